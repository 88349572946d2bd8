// Two run folders compared: the settings that differ, how their datasets differ (by content hash
// and path), their figures side by side, and the validation images whose prediction flipped.
// Pure: reads nothing itself (src/training/run/runFolderReader.ts reads and verifies the folders).
import {
  settingDifferences,
  type ClassFigures,
  type DatasetDifference,
  type FlippedImage,
  type Flips,
  type RunComparison,
  type RunFigures,
} from '../../shared/compare';
import type { ImageList } from '../../shared/runFolder';
import type { Evaluation, Prediction } from '../../shared/types';
import type { ComparableRun } from '../run/runFolderReader';

interface ImageRow {
  path: string;
  class: string;
  sha256: string;
}

function rowsOf(list: ImageList): ImageRow[] {
  return list.images.map(([path, classIndex, , sha256]) => ({ path, class: list.classes[classIndex] ?? '', sha256 }));
}

function groupBySha(rows: ImageRow[]): Map<string, ImageRow[]> {
  const groups = new Map<string, ImageRow[]>();
  for (const row of rows) {
    const group = groups.get(row.sha256);
    if (group) group.push(row);
    else groups.set(row.sha256, [row]);
  }
  return groups;
}

const byPath = <T extends { path: string }>(x: T, y: T): number => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);

/**
 * How B's images differ from A's. Per content hash: copies at the same path pair first, the rest in
 * path order; a pair in another class is relabelled, in the same class renamed; unpaired copies
 * are added or removed.
 */
export function datasetDifference(a: ImageList | undefined, b: ImageList | undefined, countA: number, countB: number): DatasetDifference {
  const diff: DatasetDifference = {
    recorded: Boolean(a && b),
    imagesA: countA,
    imagesB: countB,
    added: [],
    removed: [],
    relabelled: [],
    renamed: [],
    unchanged: 0,
  };
  if (!a || !b) return diff;
  diff.imagesA = a.images.length;
  diff.imagesB = b.images.length;
  const groupsA = groupBySha(rowsOf(a));
  const groupsB = groupBySha(rowsOf(b));
  for (const [sha, inA] of groupsA) {
    const inB = [...(groupsB.get(sha) ?? [])];
    const restA: ImageRow[] = [];
    for (const rowA of inA) {
      const same = inB.findIndex((rowB) => rowB.path === rowA.path);
      if (same < 0) {
        restA.push(rowA);
        continue;
      }
      // The class is the first folder of the path, so the same path is the same class.
      inB.splice(same, 1);
      diff.unchanged++;
    }
    restA.sort(byPath);
    inB.sort(byPath);
    restA.forEach((rowA, i) => {
      const rowB = inB[i];
      if (!rowB) diff.removed.push({ path: rowA.path, class: rowA.class });
      else if (rowB.class !== rowA.class)
        diff.relabelled.push({ sha256: sha, pathA: rowA.path, pathB: rowB.path, classA: rowA.class, classB: rowB.class });
      else diff.renamed.push({ pathA: rowA.path, pathB: rowB.path, class: rowA.class });
    });
    for (const rowB of inB.slice(restA.length)) diff.added.push({ path: rowB.path, class: rowB.class });
  }
  for (const [sha, inB] of groupsB) if (!groupsA.has(sha)) for (const row of inB) diff.added.push({ path: row.path, class: row.class });
  diff.added.sort(byPath);
  diff.removed.sort(byPath);
  diff.relabelled.sort((x, y) => byPath({ path: x.pathB }, { path: y.pathB }));
  diff.renamed.sort((x, y) => byPath({ path: x.pathB }, { path: y.pathB }));
  return diff;
}

/** Content hash of each validated image, where the run recorded its images. */
function shaOfPaths(list: ImageList | undefined): Map<string, string> {
  return new Map((list?.images ?? []).map((r) => [r[0], r[3]]));
}

/**
 * Pairs the validation predictions of A and B: by path first, then (for the rest) by content hash
 * when it names exactly one image on each side, so a renamed or relabelled image is still compared.
 */
export function pairPredictions(a: ComparableRun, b: ComparableRun): { pairs: [Prediction, Prediction][]; onlyA: number; onlyB: number } {
  const predsB = new Map(b.evaluation.predictions.map((p) => [p.path, p]));
  const pairs: [Prediction, Prediction][] = [];
  const restA: Prediction[] = [];
  for (const pa of a.evaluation.predictions) {
    const pb = predsB.get(pa.path);
    if (pb) {
      pairs.push([pa, pb]);
      predsB.delete(pa.path);
    } else restA.push(pa);
  }
  const shaA = shaOfPaths(a.images);
  const shaB = shaOfPaths(b.images);
  const uniqueBySha = (preds: Iterable<Prediction>, sha: Map<string, string>): Map<string, Prediction | null> => {
    const out = new Map<string, Prediction | null>();
    for (const p of preds) {
      const key = sha.get(p.path);
      if (key) out.set(key, out.has(key) ? null : p);
    }
    return out;
  };
  const restBySha = uniqueBySha(predsB.values(), shaB);
  const leftA = uniqueBySha(restA, shaA);
  let paired = 0;
  for (const [key, pa] of leftA) {
    const pb = restBySha.get(key);
    if (!pa || !pb) continue;
    pairs.push([pa, pb]);
    paired++;
  }
  return { pairs, onlyA: restA.length - paired, onlyB: predsB.size - paired };
}

/** The validation images whose prediction flipped between A and B, each list in B's path order. */
export function flipsOf(a: Evaluation, b: Evaluation, pairs: readonly [Prediction, Prediction][]): Flips {
  const flips: Flips = { fixed: [], broken: [], changed: [] };
  for (const [pa, pb] of pairs) {
    const labelA = a.classes[pa.actual]!;
    const labelB = b.classes[pb.actual]!;
    const before = a.classes[pa.predicted]!;
    const after = b.classes[pb.predicted]!;
    const rightA = pa.predicted === pa.actual;
    const rightB = pb.predicted === pb.actual;
    const list =
      !rightA && rightB
        ? flips.fixed
        : rightA && !rightB
          ? flips.broken
          : !rightA && !rightB && before !== after
            ? flips.changed
            : undefined;
    if (!list) continue;
    const flip: FlippedImage = {
      path: pb.path,
      label: labelB,
      before,
      after,
      confidenceBefore: pa.confidence,
      confidenceAfter: pb.confidence,
    };
    if (labelA !== labelB) flip.labelBefore = labelA;
    if (pa.path !== pb.path) flip.pathBefore = pa.path;
    list.push(flip);
  }
  for (const list of [flips.fixed, flips.broken, flips.changed]) list.sort(byPath);
  return flips;
}

function figuresOf(evaluation: Evaluation, common: readonly Prediction[]): RunFigures {
  const c = evaluation.calibration;
  return {
    accuracy: evaluation.accuracy,
    macroF1: evaluation.macro?.f1 ?? 0,
    ...(c ? { calibration: { temperature: c.temperature, eceBefore: c.eceBefore, eceAfter: c.eceAfter } } : {}),
    commonAccuracy: common.length === 0 ? 0 : common.filter((p) => p.actual === p.predicted).length / common.length,
  };
}

function classFigures(evaluation: Evaluation, name: string): ClassFigures | undefined {
  const m = evaluation.perClass.find((c) => c.name === name);
  return m ? { precision: m.precision, recall: m.recall, f1: m.f1, support: m.support } : undefined;
}

/** Compares two verified runs: A is the earlier (the "before"), B the later. */
export function compareRuns(a: ComparableRun, b: ComparableRun): RunComparison {
  const { pairs, onlyA, onlyB } = pairPredictions(a, b);
  const names = [...a.evaluation.classes, ...b.evaluation.classes.filter((c) => !a.evaluation.classes.includes(c))];
  const described = (run: ComparableRun) => ({
    name: run.name,
    runDir: run.runDir,
    datasetRoot: run.status.datasetRoot,
    startedAt: run.status.startedAt,
    model: run.config.model.id,
  });
  const settings = settingDifferences(a.config.options, b.config.options);
  if (a.status.datasetRoot !== b.status.datasetRoot)
    settings.unshift({ name: 'dataset', a: a.status.datasetRoot, b: b.status.datasetRoot });
  return {
    format: 'image-trainer/comparison@1',
    a: described(a),
    b: described(b),
    settings,
    dataset: datasetDifference(a.images, b.images, countOf(a), countOf(b)),
    metrics: {
      a: figuresOf(
        a.evaluation,
        pairs.map((p) => p[0]),
      ),
      b: figuresOf(
        b.evaluation,
        pairs.map((p) => p[1]),
      ),
      perClass: names.map((name) => ({
        name,
        ...optional('a', classFigures(a.evaluation, name)),
        ...optional('b', classFigures(b.evaluation, name)),
      })),
    },
    validation: { both: pairs.length, onlyA, onlyB },
    flips: flipsOf(a.evaluation, b.evaluation, pairs),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** Images of a run: its image list, or (a run folder without one) the images it validated. */
function countOf(run: ComparableRun): number {
  return run.images?.images.length ?? run.evaluation.predictions.length;
}
