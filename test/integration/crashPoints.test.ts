// The real CLI (dist/training.js train) SIGKILLed at exact points of its writes, through the
// preload test/support/killAt.cjs. After every kill the run folder must still make sense: the
// best checkpoint loads (or the folder says it has none, and predict says so in one line), the
// status as a reader reconciles it agrees with the model folder's own record, the run lists as
// interrupted, and a rerun on the same cache predicts exactly what a clean run predicts.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelCheckpoint, RunStatus } from '../../src/shared/runFolder';
import { parseModelCheckpoint } from '../../src/shared/runState';
import type { Evaluation } from '../../src/shared/types';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson, repo } from '../support/trainingBundle';

const killAt = path.join(repo, 'test/support/killAt.cjs');

interface Kill {
  /** What the kill interrupts, as the test's name says it. */
  name: string;
  pattern: string;
  op: 'rename' | 'write' | 'append' | 'open';
  n?: number;
  /** For renames: only a rename whose source text matches this counts (KILL_AT_CONTENT). */
  content?: string;
  when: 'before' | 'after' | 'during';
  /** Whether the folder must hold a model after this kill. */
  checkpoint: boolean;
  /** The state the run lists with (default: interrupted). */
  state?: 'interrupted' | 'finished';
}

const WEIGHTS = 'model/weights-[^/]*\\.bin$';
const MODEL_JSON = 'model/model\\.json$';
const STATUS = 'status\\.json$';

// The run trains 3 epochs; each beats the one before (seeded), so each writes a checkpoint.
const KILLS: Kill[] = [
  {
    name: 'half-way through the scan index write',
    pattern: 'cache/scan/[^/]*\\.json\\.tmp',
    op: 'write',
    when: 'during',
    checkpoint: false,
  },
  { name: 'half-way through the ONNX graph write', pattern: 'cache/onnx/.*\\.graph\\.tmp', op: 'write', when: 'during', checkpoint: false },
  { name: 'half-way through the feature pack write', pattern: '\\.pack\\.', op: 'write', when: 'during', checkpoint: false },
  {
    name: 'before the first checkpoint’s weights are renamed into place',
    pattern: WEIGHTS,
    op: 'rename',
    n: 1,
    when: 'before',
    checkpoint: false,
  },
  { name: 'after the first checkpoint’s weights are in place', pattern: WEIGHTS, op: 'rename', n: 1, when: 'after', checkpoint: false },
  { name: 'before the first model.json rename', pattern: MODEL_JSON, op: 'rename', n: 1, when: 'before', checkpoint: false },
  {
    name: 'after the first model.json rename, before status.json says so',
    pattern: MODEL_JSON,
    op: 'rename',
    n: 1,
    when: 'after',
    checkpoint: true,
  },
  { name: 'after the second checkpoint’s weights are in place', pattern: WEIGHTS, op: 'rename', n: 2, when: 'after', checkpoint: true },
  {
    name: 'after the second model.json rename, before status.json says so',
    pattern: MODEL_JSON,
    op: 'rename',
    n: 2,
    when: 'after',
    checkpoint: true,
  },
  // status.json is renamed at the start, after each checkpoint, and when the run finishes.
  { name: 'after the status.json rename of the second checkpoint', pattern: STATUS, op: 'rename', n: 3, when: 'after', checkpoint: true },
  {
    name: 'before the status.json rename that says the run finished',
    pattern: STATUS,
    op: 'rename',
    content: '"state":\\s*"finished"',
    when: 'before',
    checkpoint: true,
  },
  {
    name: 'half-way through appending the second epoch to metrics.jsonl',
    pattern: 'metrics\\.jsonl$',
    op: 'append',
    n: 2,
    when: 'during',
    checkpoint: true,
  },
  // The report comes after the final status: the run is recorded as finished by then.
  {
    name: 'half-way through writing report.md',
    pattern: 'report\\.md\\.tmp',
    op: 'write',
    when: 'during',
    checkpoint: true,
    state: 'finished',
  },
];

const TRAIN_ARGS = ['--epochs', '3', '--patience', '0', '--quiet'];

let data: string;
let cleanPredictions: Evaluation['predictions'];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function node(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number; signal?: NodeJS.Signals }) | null;
      resolve({ code: e ? (e.code ?? null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

function train(runs: string, cache: string, preload: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return node([...preload, bundle, 'train', data, '--out', runs, '--cache', cache, ...TRAIN_ARGS], env);
}

function predictionsOf(runDir: string): Evaluation['predictions'] {
  return readJson<Evaluation>(path.join(runDir, 'evaluation.json')).predictions;
}

function checkpointOf(runDir: string): ModelCheckpoint | undefined {
  const file = path.join(runDir, 'model', 'model.json');
  return fs.existsSync(file) ? parseModelCheckpoint(fs.readFileSync(file, 'utf8')) : undefined;
}

before(async () => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
  data = path.join(tempDir('it-crash-data-'), 'leaves');
  copySample(data, 8, ['healthy', 'scab']);
  const work = tempDir('it-crash-clean-');
  const clean = await train(path.join(work, 'runs'), path.join(work, 'cache'));
  assert.equal(clean.code, 0, clean.stderr);
  const runDir = onlyRun(path.join(work, 'runs'));
  cleanPredictions = predictionsOf(runDir);
  assert.equal(checkpointOf(runDir)?.epoch, 3, 'the clean run checkpoints its last epoch: the kill points count on 3 checkpoints');
});

for (const kill of KILLS) {
  test(`a run killed ${kill.name} leaves a folder that agrees with itself, and a clean cache`, async () => {
    const work = tempDir('it-crash-');
    const runs = path.join(work, 'runs');
    const cache = path.join(work, 'cache');
    const killed = await train(runs, cache, ['--require', killAt], {
      KILL_AT_PATTERN: kill.pattern,
      KILL_AT_OP: kill.op,
      KILL_AT_N: String(kill.n ?? 1),
      KILL_AT_WHEN: kill.when,
      ...(kill.content ? { KILL_AT_CONTENT: kill.content } : {}),
    });
    assert.equal(killed.signal, 'SIGKILL', `the kill point was never reached:\n${killed.stderr}`);
    const runDir = onlyRun(runs);

    // The listing reads the run as interrupted (unless it had recorded its end), with the model folder's figures.
    const listed = await node([bundle, 'runs', runs, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const [run] = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { state: string; hasCheckpoint: boolean; bestEpoch?: number; valAccuracy?: number });
    assert.equal(run.state, kill.state ?? 'interrupted');
    assert.equal(run.hasCheckpoint, kill.checkpoint);
    const record = checkpointOf(runDir);
    if (kill.checkpoint) {
      assert.ok(record, 'model.json records its epoch');
      assert.equal(run.bestEpoch, record.epoch, 'the status as read names the epoch the model folder holds');
      assert.equal(run.valAccuracy, record.valAccuracy);
    } else {
      assert.equal(fs.existsSync(path.join(runDir, 'model', 'model.json')), false);
    }

    // predict uses the checkpoint, or says in one line that there is none.
    const image = path.join(data, 'scab', fs.readdirSync(path.join(data, 'scab')).sort()[0]);
    const predicted = await node([bundle, 'predict', runDir, image, '--json']);
    if (kill.checkpoint) {
      assert.equal(predicted.code, 0, predicted.stderr);
      assert.match(JSON.parse(predicted.stdout.trim()).label as string, /^(healthy|scab)$/);
    } else {
      assert.equal(predicted.code, 1);
      const lines = predicted.stderr.split('\n').filter((l) => l.includes('holds no trained model'));
      assert.equal(lines.length, 1, predicted.stderr);
    }

    // status.json on disk never claims weights the folder does not hold.
    const onDisk = readJson<RunStatus>(path.join(runDir, 'status.json'));
    if (!kill.checkpoint) assert.equal(onDisk.hasCheckpoint, false);

    // A rerun on the same cache predicts what a clean run predicts: nothing half-written was used.
    const rerun = await train(runs, cache);
    assert.equal(rerun.code, 0, rerun.stderr);
    const rerunDir = fs
      .readdirSync(runs)
      .map((d) => path.join(runs, d))
      .find((d) => d !== runDir);
    assert.ok(rerunDir);
    assert.deepEqual(predictionsOf(rerunDir), cleanPredictions);
  });
}
