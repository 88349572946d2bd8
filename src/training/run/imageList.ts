// images.json: what a run trained and validated on, image by image (path, class, side, content
// hash), so that two runs can be compared by content even after files were renamed or moved.
// One compact line per image; about 100 bytes each.
import * as fs from 'node:fs';
import { isArrayOf, isNumber, isObject, isOneOf, isString } from '../../shared/protocol/guards';
import type { ImageList } from '../../shared/runFolder';
import type { DatasetItem } from '../dataset/datasetScanner';
import { writeFileAtomic } from '../util/atomicWrite';

const SIDES = ['train', 'val', 'test'] as const;
const SHA256 = /^[0-9a-f]{64}$/;

/** Writes images.json for the scanned `items` (sorted by path, so equal datasets give equal files). */
export async function writeImageList(file: string, classes: readonly string[], items: readonly DatasetItem[]): Promise<void> {
  const rows = items
    .map((i): ImageList['images'][number] => [i.rel, i.classIndex, i.split, i.sha256])
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const list: ImageList = { format: 'image-trainer/images@1', classes: [...classes], images: rows };
  const body = rows.map((r) => JSON.stringify(r)).join(',\n');
  await writeFileAtomic(
    file,
    `{"format":${JSON.stringify(list.format)},"classes":${JSON.stringify(list.classes)},"images":[\n${body}\n]}\n`,
  );
}

/** True for a parsed images.json whose every row names a known class, a side and a sha256. */
export function isImageList(v: unknown): v is ImageList {
  if (!isObject(v) || v.format !== 'image-trainer/images@1' || !isArrayOf(v.classes, isString)) return false;
  const classes = v.classes.length;
  return isArrayOf(
    v.images,
    (r): r is ImageList['images'][number] =>
      Array.isArray(r) &&
      r.length === 4 &&
      isString(r[0]) &&
      isNumber(r[1]) &&
      Number.isInteger(r[1]) &&
      r[1] >= 0 &&
      r[1] < classes &&
      isOneOf(r[2], SIDES) &&
      isString(r[3]) &&
      SHA256.test(r[3]),
  );
}

/** Reads images.json of a run folder: undefined when the run did not record it. Throws when it is there but malformed. */
export async function readImageList(file: string): Promise<ImageList | undefined> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed: unknown = JSON.parse(text);
  if (!isImageList(parsed)) throw new Error('not a list of images (path, class, side, sha256)');
  return parsed;
}
