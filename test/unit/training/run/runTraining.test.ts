// The run as a pipeline: stages called one by one on a real context (real tfjs, real sharp, real
// images from the sample), the order and timing `runStages` gives them, what a cancel does
// before and after a model exists, and a stage added to the list.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { TrainingNotification } from '../../../../src/shared/protocol/training';
import type { RunStatus } from '../../../../src/shared/runFolder';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../../../../src/shared/types';
import { RunContext, StageTimer, type RunStage } from '../../../../src/training/run/runContext';
import { createRunFolder, RunFolderWriter } from '../../../../src/training/run/runFolderWriter';
import { runStages, runTraining, TRAINING_STAGES } from '../../../../src/training/run/runTraining';
import { backendStage } from '../../../../src/training/run/stages/backendStage';
import { baseModelStage } from '../../../../src/training/run/stages/baseModelStage';
import { featuresStage } from '../../../../src/training/run/stages/featuresStage';
import { recipeStage } from '../../../../src/training/run/stages/recipeStage';
import { scanStage } from '../../../../src/training/run/stages/scanStage';
import { RunCancelled, TrainerError } from '../../../../src/training/util/errors';
import { tempDir } from '../../../support/tempDirs';

const repo = path.resolve(__dirname, '../../../..');
const sample = path.join(repo, 'samples/leaves');

/** Two classes of the sample, `perClass` images each, in a fresh folder. */
function smallDataset(perClass: number): string {
  const root = path.join(tempDir('run-data-'), 'leaves');
  for (const c of ['healthy', 'scab']) {
    fs.mkdirSync(path.join(root, c), { recursive: true });
    for (const f of fs.readdirSync(path.join(sample, c)).sort().slice(0, perClass))
      fs.copyFileSync(path.join(sample, c, f), path.join(root, c, f));
  }
  return root;
}

/** A run context over a real run folder, as `runTraining` makes one. */
async function contextFor(datasetRoot: string, over: Partial<TrainOptions> = {}, signal = new AbortController().signal) {
  const work = tempDir('run-ctx-');
  const runsDir = path.join(work, 'runs');
  const runDir = await createRunFolder(runsDir, datasetRoot, 'leaves', new Date());
  const writer = new RunFolderWriter(runDir, {
    state: 'running',
    datasetRoot,
    datasetName: 'leaves',
    startedAt: new Date().toISOString(),
    hasCheckpoint: false,
  });
  const sent: TrainingNotification[] = [];
  const request = {
    datasetRoot,
    runsDir,
    cacheDir: path.join(work, 'cache'),
    options: { ...DEFAULT_TRAIN_OPTIONS, ...over },
    extensionRoot: repo,
  };
  const ctx = new RunContext(request, datasetRoot, writer, (n) => sent.push(n), signal, new StageTimer(0), Date.now());
  return { ctx, sent, work };
}

/** A stage that records that it ran (and optionally needs a product first). */
function probe(name: RunStage['name'], ran: string[], run: (ctx: RunContext) => void | Promise<void> = () => undefined): RunStage {
  return {
    name,
    async run(ctx) {
      await run(ctx);
      ran.push(name);
    },
  };
}

describe('runStages', () => {
  it('runs stages in order, skips those that say so, and times each under its own name', async () => {
    const { ctx } = await contextFor(smallDataset(1));
    const ran: string[] = [];
    const slow = probe('scan', ran, () => new Promise((r) => setTimeout(r, 30)));
    const skipped: RunStage = { name: 'fineTune', skip: () => true, run: async () => void ran.push('fineTune') };
    await runStages(ctx, [probe('backend', ran), slow, skipped, probe('evaluate', ran)]);
    await ctx.writer.close();
    assert.deepEqual(ran, ['backend', 'scan', 'evaluate']);
    assert.ok(ctx.timer.times.scan! >= 25, `scan timed ${ctx.timer.times.scan} ms`);
    assert.equal(ctx.timer.times.fineTune, undefined);
    assert.equal(typeof ctx.timer.times.evaluate, 'number');
  });

  it('a stage placed before the stage that produces its input fails with an internal error naming the input', async () => {
    const { ctx } = await contextFor(smallDataset(1));
    await assert.rejects(runStages(ctx, [featuresStage]), (err: unknown) => {
      assert.ok(err instanceof TrainerError);
      assert.equal(err.kind, 'internal');
      assert.match(err.message, /needs "backend", which no earlier stage produced/);
      return true;
    });
    await ctx.writer.close();
  });

  it('a cancel before any model exists ends the run before the next stage; after a best epoch the stages go on', async () => {
    const cancel = new AbortController();
    const { ctx } = await contextFor(smallDataset(1), {}, cancel.signal);
    const ran: string[] = [];
    await assert.rejects(
      runStages(ctx, [probe('backend', ran, () => cancel.abort()), probe('scan', ran)]),
      (err: unknown) => err instanceof RunCancelled,
    );
    assert.deepEqual(ran, ['backend']);
    ctx.bestEpoch = 3;
    await runStages(ctx, [probe('evaluate', ran), probe('save', ran)]);
    assert.deepEqual(ran, ['backend', 'evaluate', 'save']);
    await ctx.writer.close();
  });
});

describe('the stages, called one by one', () => {
  it('backend, scan, base model and features leave what the head needs, from real images', async () => {
    const data = smallDataset(6);
    const { ctx, sent } = await contextFor(data, { valSplit: 0.34 });
    for (const stage of [backendStage, scanStage, baseModelStage, recipeStage, featuresStage]) await stage.run(ctx);
    const { info } = ctx.need('backend');
    assert.ok(['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'].includes(info.backend));
    const scan = ctx.need('scan');
    assert.deepEqual(scan.classes, ['healthy', 'scab']);
    assert.equal(scan.train.length + scan.val.length, 12);
    const model = ctx.need('model');
    assert.equal(model.entry.id, DEFAULT_TRAIN_OPTIONS.model);
    assert.ok(fs.existsSync(path.join(ctx.runDir, 'config.json')));
    assert.equal(sent.filter((n) => n.type === 'started').length, 1);
    const features = ctx.need('features');
    assert.equal(features.train.n + features.val.n, 12);
    assert.equal(features.train.x.length, features.train.n * model.base.featureSize);
    assert.equal(features.valPaths.length, features.val.n);
    assert.deepEqual(features.cache, { hits: 0, misses: 12 });
    ctx.disposeAll();
    await ctx.writer.close();
  });
});

describe('runTraining', () => {
  it('runs a stage added to the list between its neighbours, with what the earlier stages produced, and finishes the run', async () => {
    const data = smallDataset(6);
    const work = tempDir('run-extra-');
    const seen: string[] = [];
    const inspect: RunStage = {
      name: 'features',
      async run(ctx) {
        seen.push(
          `features of ${ctx.need('features').train.n + ctx.need('features').val.n} images, head ${ctx.get('head') ? 'trained' : 'not yet'}`,
        );
      },
    };
    const at = TRAINING_STAGES.indexOf(featuresStage) + 1;
    const stages = [...TRAINING_STAGES.slice(0, at), inspect, ...TRAINING_STAGES.slice(at)];
    const summary = await runTraining(
      {
        datasetRoot: data,
        runsDir: path.join(work, 'runs'),
        cacheDir: path.join(work, 'cache'),
        options: { ...DEFAULT_TRAIN_OPTIONS, epochs: 2 },
        extensionRoot: repo,
      },
      () => undefined,
      undefined,
      stages,
    );
    assert.deepEqual(seen, ['features of 12 images, head not yet']);
    assert.equal(summary.epochsRun, 2);
    const status = JSON.parse(fs.readFileSync(path.join(summary.runDir, 'status.json'), 'utf8')) as RunStatus;
    assert.equal(status.state, 'finished');
  });

  it('records a failure in the run folder with its kind and attaches the run folder to the error', async () => {
    const work = tempDir('run-fail-');
    const data = path.join(work, 'one-class');
    fs.mkdirSync(path.join(data, 'healthy'), { recursive: true });
    fs.copyFileSync(path.join(sample, 'healthy', fs.readdirSync(path.join(sample, 'healthy'))[0]), path.join(data, 'healthy', 'a.jpg'));
    const err = await runTraining(
      {
        datasetRoot: data,
        runsDir: path.join(work, 'runs'),
        cacheDir: path.join(work, 'cache'),
        options: DEFAULT_TRAIN_OPTIONS,
        extensionRoot: repo,
      },
      () => undefined,
    ).then(
      () => assert.fail('expected the run to fail'),
      (e: unknown) => e as TrainerError,
    );
    assert.equal(err.kind, 'dataset');
    assert.ok(err.runDir && fs.existsSync(err.runDir));
    const status = JSON.parse(fs.readFileSync(path.join(err.runDir!, 'status.json'), 'utf8')) as RunStatus;
    assert.equal(status.state, 'failed');
    assert.equal(status.errorKind, 'dataset');
    assert.equal(status.message, err.message);
  });

  it('refuses an unknown model id as an options problem before it creates a run folder', async () => {
    const work = tempDir('run-model-');
    await assert.rejects(
      runTraining(
        {
          datasetRoot: sample,
          runsDir: path.join(work, 'runs'),
          cacheDir: path.join(work, 'cache'),
          options: { ...DEFAULT_TRAIN_OPTIONS, model: 'resnet_9000' },
        },
        () => undefined,
      ),
      (err: unknown) => err instanceof TrainerError && err.kind === 'options' && /Unknown base model "resnet_9000"/.test(err.message),
    );
    assert.equal(fs.existsSync(path.join(work, 'runs')), false);
  });
});

describe('the features stage', () => {
  it('lists at most 200 images per reason that fail to decode, counts the rest, and names only the first ones in the log', async () => {
    const data = smallDataset(6);
    // Truncated copies of a real JPEG: the header reads, so the scan keeps them, and decoding fails.
    const jpeg = fs.readFileSync(path.join(data, 'healthy', fs.readdirSync(path.join(data, 'healthy'))[0]));
    for (let i = 0; i < 205; i++)
      fs.writeFileSync(
        path.join(data, 'scab', `cut${i}.jpg`),
        Buffer.concat([jpeg.subarray(0, Math.floor(jpeg.length / 3)), Buffer.from([i & 255])]),
      );
    const { ctx, sent } = await contextFor(data, { valSplit: 0.34 });
    for (const stage of [backendStage, scanStage, baseModelStage, recipeStage, featuresStage]) await stage.run(ctx);
    ctx.disposeAll();
    await ctx.writer.close();
    const report = JSON.parse(fs.readFileSync(path.join(ctx.runDir, 'dataset-report.json'), 'utf8')) as {
      skipped: { reason: string }[];
      skippedUnlisted?: Record<string, number>;
    };
    assert.equal(report.skipped.filter((s) => s.reason === 'corrupt').length, 200);
    assert.deepEqual(report.skippedUnlisted, { corrupt: 5 });
    const warning = sent.find((n) => n.type === 'log' && n.level === 'warn' && /could not be decoded/.test(n.message));
    assert.match(
      warning?.type === 'log' ? warning.message : '',
      /^205 images could not be decoded and were skipped: (scab\/cut\d+\.jpg, ){19}scab\/cut\d+\.jpg and 185 more$/,
    );
  });
});
