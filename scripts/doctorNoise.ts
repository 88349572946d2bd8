// `npx tsx scripts/doctorNoise.ts <dataset> [--rates 0.05,0.1] [--per-class N] [--seed S] [--cache DIR]`:
// how well the doctor finds injected label errors. For each noise rate: a class-balanced COPY of the
// dataset (the first N files of each class, in name order) in a temporary folder, a seeded share of
// its files moved to another class (drawn uniformly), `image-trainer doctor --json` through the built
// bundle, and the precision and recall of the top k label issues, k = the number moved (so the two
// are equal unless the doctor lists fewer than k). The dataset itself is only read. Run `npm run
// build` first; reuse one --cache across runs (copies have the originals' content, so their features
// come from the cache).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { DoctorReport } from '../src/shared/doctor';
import { noisyCopy } from '../test/support/noisyDataset';

const repoRoot = path.resolve(__dirname, '..');

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      rates: { type: 'string', default: '0.05,0.1' },
      'per-class': { type: 'string', default: '500' },
      seed: { type: 'string', default: '1' },
      cache: { type: 'string' },
    },
  });
  const dataset = path.resolve(positionals[0] ?? path.join(repoRoot, 'samples/leaves'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-noise-'));
  const cache = path.resolve(values.cache ?? path.join(work, 'cache'));
  console.log('| dataset | images | noise | moved (k) | found in top k | precision = recall | listed issues | doctor s |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const rate of values.rates.split(',').map(Number)) {
    const copy = path.join(work, `${path.basename(dataset)}-${rate}`);
    const moved = noisyCopy(dataset, copy, Number(values['per-class']), rate, Number(values.seed));
    const started = performance.now();
    const out = execFileSync(
      process.execPath,
      [
        path.join(repoRoot, 'bin/image-trainer.js'),
        'doctor',
        copy,
        '--json',
        '--quiet',
        '--out',
        path.join(work, 'runs'),
        '--cache',
        cache,
      ],
      { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const seconds = (performance.now() - started) / 1000;
    const report = JSON.parse(out) as DoctorReport;
    const k = moved.size;
    const hits = report.labelIssues.slice(0, k).filter((i) => moved.has(i.path)).length;
    console.log(
      `| ${path.basename(dataset)} | ${report.images} | ${(100 * rate).toFixed(0)}% | ${k} | ${hits} | ${((100 * hits) / Math.max(1, k)).toFixed(1)}% | ${report.labelIssues.length} | ${seconds.toFixed(1)} |`,
    );
  }
  fs.rmSync(work, { recursive: true, force: true });
}

main();
