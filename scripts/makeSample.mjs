// Builds samples/leaves from a PlantVillage "apple" class-folder dataset: the first N readable
// images of each class, downsized to 128×128 JPEG so the sample stays under 1 MB.
// Usage: node scripts/makeSample.mjs <plantvillage-apple folder> [perClass]
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

const [src, perClassArg] = process.argv.slice(2);
if (!src) throw new Error('usage: node scripts/makeSample.mjs <plantvillage-apple folder> [perClass]');
const perClass = Number(perClassArg ?? 30);
const names = {
  Apple___Apple_scab: 'scab',
  Apple___Black_rot: 'black_rot',
  Apple___Cedar_apple_rust: 'cedar_rust',
  Apple___healthy: 'healthy',
};
const out = path.resolve('samples/leaves');
for (const [from, to] of Object.entries(names)) {
  fs.mkdirSync(path.join(out, to), { recursive: true });
  const files = fs.readdirSync(path.join(src, from)).sort();
  let n = 0;
  for (const f of files) {
    if (n >= perClass) break;
    const p = path.join(src, from, f);
    if (fs.statSync(p).size === 0) continue;
    await sharp(p)
      .resize(128, 128)
      .jpeg({ quality: 80 })
      .toFile(path.join(out, to, `${to}_${String(n + 1).padStart(2, '0')}.jpg`));
    n++;
  }
}
