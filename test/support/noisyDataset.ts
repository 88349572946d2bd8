// Label noise injected into a copy of a real dataset, for the doctor's tests and its measurement
// script (scripts/doctorNoise.ts): the source is only read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isIgnoredName } from '../../src/shared/datasetRules';
import { seededRandom, shuffledIndices } from '../../src/training/util/random';

/** Copies the first `perClass` files (name order, empty files left out) of each class of `source` into `dest`, then moves a seeded `rate` of them to another class; returns the moved files' new relative paths. */
export function noisyCopy(source: string, dest: string, perClass: number, rate: number, seed: number): Set<string> {
  const classes = fs
    .readdirSync(source, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('_') && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
  const files: { cls: string; name: string }[] = [];
  for (const cls of classes) {
    fs.mkdirSync(path.join(dest, cls), { recursive: true });
    const names = fs
      .readdirSync(path.join(source, cls))
      .filter((n) => !isIgnoredName(n) && fs.statSync(path.join(source, cls, n)).size > 0)
      .sort()
      .slice(0, perClass);
    for (const name of names) {
      fs.copyFileSync(path.join(source, cls, name), path.join(dest, cls, name));
      files.push({ cls, name });
    }
  }
  const random = seededRandom(seed);
  const order = shuffledIndices(files.length, random);
  const moved = new Set<string>();
  for (const i of Array.from(order).slice(0, Math.round(rate * files.length))) {
    const { cls, name } = files[i];
    const others = classes.filter((c) => c !== cls);
    const to = others[Math.floor(random() * others.length)];
    fs.renameSync(path.join(dest, cls, name), path.join(dest, to, name));
    moved.add(`${to}/${name}`);
  }
  return moved;
}
