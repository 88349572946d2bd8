// `node --import tsx scripts/doctorNearDuplicates.ts [--originals N] [--distinct N] [--cache DIR]`:
// calibrates the doctor's near-duplicate similarity. Copies of real photos (hymenoptera, plantvillage-
// apple and flowers from ../shared/datasets: each resized to 0.5–0.9 of its size, re-encoded as JPEG at
// quality 60–90, and cropped by 5% at one corner, seeded) are embedded with their originals and with
// distinct photos of flowers and of plantvillage-apple (the first N/5 and N/4 of each class) through
// the product's own stages; the script prints the similarity of every copy to its original, the most
// similar pairs among the distinct photos, and for each feature threshold, then for the product's rule
// (features and thumbnail layout, nearDuplicates.ts), the recall of the copies and the groups formed
// among the distinct photos. Nothing is written into the datasets: the copies go to a temporary folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_TRAIN_OPTIONS } from '../src/shared/types';
import { isIgnoredName } from '../src/shared/datasetRules';
import { centredUnitRows } from '../src/training/doctor/featureSimilarity';
import { groupPairs, isNearDuplicate } from '../src/training/doctor/nearDuplicates';
import { pixelStatsOf } from '../src/training/doctor/doctorStage';
import { thumbVector } from '../src/training/dataset/pixelStats';
import { openRun, runStages } from '../src/training/run/runTraining';
import { backendStage } from '../src/training/run/stages/backendStage';
import { baseModelStage } from '../src/training/run/stages/baseModelStage';
import { featuresStage } from '../src/training/run/stages/featuresStage';
import { scanStage } from '../src/training/run/stages/scanStage';
import { allRows } from '../src/training/run/stages/splitStage';
import { seededRandom } from '../src/training/util/random';

const shared = path.resolve(__dirname, '../../shared/datasets');
const THRESHOLDS = [0.8, 0.85, 0.9, 0.95];

/** The first `n` usable files of each class folder of `root`. */
function firstFiles(root: string, n: number): string[] {
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('_'))
    .flatMap((d) =>
      fs
        .readdirSync(path.join(root, d.name))
        .filter((f) => !isIgnoredName(f) && fs.statSync(path.join(root, d.name, f)).size > 0)
        .sort()
        .slice(0, n)
        .map((f) => path.join(root, d.name, f)),
    );
}

/** Writes the original and its three copies into `dir`; returns their names (original first). */
async function writeCopies(src: string, dir: string, id: string, random: () => number): Promise<string[]> {
  const { data, info } = await sharp(src).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const raw = () => sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels as 3 } });
  const scale = 0.5 + 0.4 * random();
  const quality = 60 + Math.floor(31 * random());
  const cw = Math.round(info.width * 0.95);
  const ch = Math.round(info.height * 0.95);
  const corner = Math.floor(4 * random());
  const left = corner % 2 ? info.width - cw : 0;
  const top = corner >= 2 ? info.height - ch : 0;
  const names = [`${id}-orig.png`, `${id}-resized.png`, `${id}-jpeg.jpg`, `${id}-cropped.png`];
  await raw().png().toFile(path.join(dir, names[0]));
  await raw()
    .resize(Math.max(8, Math.round(info.width * scale)))
    .png()
    .toFile(path.join(dir, names[1]));
  await raw().jpeg({ quality }).toFile(path.join(dir, names[2]));
  await raw().extract({ left, top, width: cw, height: ch }).png().toFile(path.join(dir, names[3]));
  return names;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { originals: { type: 'string', default: '20' }, distinct: { type: 'string', default: '500' }, cache: { type: 'string' } },
  });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-dups-'));
  const data = path.join(work, 'data');
  const random = seededRandom(5);
  const copiesOf: string[][] = [];
  for (const ds of ['hymenoptera', 'plantvillage-apple', 'flowers']) {
    const dir = path.join(data, `copies-${ds}`);
    fs.mkdirSync(dir, { recursive: true });
    const picked = firstFiles(path.join(shared, ds), 1000).filter(
      (_, i, all) => i % Math.floor(all.length / Number(values.originals)) === 0,
    );
    for (const [i, src] of picked.slice(0, Number(values.originals)).entries()) {
      copiesOf.push((await writeCopies(src, dir, `${i}`, random)).map((n) => `copies-${ds}/${n}`));
    }
  }
  for (const [ds, classes] of [
    ['flowers', 5],
    ['plantvillage-apple', 4],
  ] as const) {
    const dir = path.join(data, `distinct-${ds}`);
    fs.mkdirSync(dir);
    for (const src of firstFiles(path.join(shared, ds), Number(values.distinct) / classes)) {
      fs.copyFileSync(src, path.join(dir, `${path.basename(path.dirname(src))}-${path.basename(src)}`));
    }
  }
  const options = { ...DEFAULT_TRAIN_OPTIONS, valSplit: 0.2 };
  const cacheDir = path.resolve(values.cache ?? path.join(work, 'cache'));
  const ctx = await openRun(
    { datasetRoot: data, runsDir: path.join(work, 'runs'), cacheDir, options },
    () => undefined,
    new AbortController().signal,
  );
  try {
    await runStages(ctx, [backendStage, scanStage, baseModelStage, featuresStage]);
    const stats = await pixelStatsOf(ctx, allRows(ctx).items);
    report(
      ctx,
      copiesOf,
      stats.map((st) => (st.thumb ? thumbVector(st) : undefined)),
    );
  } finally {
    ctx.disposeAll();
    await ctx.writer.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Prints the similarities and, per threshold, recall and false groups. */
function report(ctx: Parameters<typeof allRows>[0], copiesOf: string[][], thumbs: (Float32Array | undefined)[]): void {
  const { items, set } = allRows(ctx);
  const f = set.featureSize;
  const unit = centredUnitRows(set.x, set.n, f);
  const row = new Map(items.map((it, r) => [it.rel, r]));
  const sim = (a: number, b: number) => unit.subarray(a * f, (a + 1) * f).reduce((s, v, j) => s + v * unit[b * f + j], 0);
  const kinds = ['resized', 'jpeg', 'cropped'];
  const copySims = kinds.map(() => [] as number[]);
  for (const names of copiesOf) names.slice(1).forEach((n, k) => copySims[k].push(sim(row.get(names[0])!, row.get(n)!)));
  for (const [k, sims] of copySims.entries()) {
    const s = [...sims].sort((a, b) => a - b);
    console.log(
      `${kinds[k]}: ${s.length} copies, similarity min ${s[0].toFixed(4)}, 5% ${s[Math.floor(0.05 * s.length)].toFixed(4)}, median ${s[s.length >> 1].toFixed(4)}`,
    );
  }
  const layout = (a: number, b: number) =>
    thumbs[a] && thumbs[b] ? thumbs[a].reduce((sum, v, t) => sum + v * thumbs[b]![t], 0) : undefined;
  const copyPairs = copiesOf.flatMap((names) => names.slice(1).map((n) => [row.get(names[0])!, row.get(n)!] as const));
  for (const ds of ['flowers', 'plantvillage-apple']) {
    const distinct = items.flatMap((it, r) => (it.rel.startsWith(`distinct-${ds}/`) ? [r] : []));
    const pairs: { i: number; j: number; similarity: number; layout?: number }[] = [];
    for (let a = 0; a < distinct.length; a++) {
      for (let b = a + 1; b < distinct.length; b++) {
        const similarity = sim(distinct[a], distinct[b]);
        if (similarity >= 0.5) pairs.push({ i: a, j: b, similarity, layout: layout(distinct[a], distinct[b]) });
      }
    }
    pairs.sort((p, q) => q.similarity - p.similarity);
    console.log(`Most similar distinct pairs of ${ds} (features, layout):`);
    for (const p of pairs.slice(0, 10)) {
      console.log(`  ${p.similarity.toFixed(4)} ${p.layout?.toFixed(3)} ${items[distinct[p.i]].rel} ${items[distinct[p.j]].rel}`);
    }
    console.log(`| rule | copies found (recall) | groups among ${distinct.length} distinct ${ds} photos | photos in them |`);
    console.log('|---|---|---|---|');
    const rules: [string, (s: number, l: number | undefined) => boolean][] = [
      ...THRESHOLDS.map((t): [string, (s: number) => boolean] => [`features ≥ ${t}`, (s) => s >= t]),
      ['the product (features and layout)', isNearDuplicate],
    ];
    for (const [name, rule] of rules) {
      const found = copyPairs.filter(([a, b]) => rule(sim(a, b), layout(a, b))).length;
      const { groups } = groupPairs(
        distinct.length,
        pairs.filter((p) => rule(p.similarity, p.layout)),
      );
      const photos = groups.reduce((n, g) => n + g.length, 0);
      console.log(
        `| ${name} | ${found} of ${copyPairs.length} (${((100 * found) / copyPairs.length).toFixed(1)}%) | ${groups.length} | ${photos} |`,
      );
      if (rule === isNearDuplicate) for (const g of groups) console.log(`  grouped: ${g.map((r) => items[distinct[r]].rel).join(' ')}`);
    }
  }
  const missed = copyPairs.filter(([a, b]) => !isNearDuplicate(sim(a, b), layout(a, b)));
  for (const [a, b] of missed)
    console.log(`  missed: ${items[b].rel} (features ${sim(a, b).toFixed(3)}, layout ${layout(a, b)?.toFixed(3)})`);
}

void main();
