// A dataset's run history for the tree and the panel's Runs table, and the files the exploring
// views read from a run folder (the feature map, the doctor's findings). No `vscode` import: the
// rules are unit-tested directly.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { settingDifferences, type RunComparison } from '../shared/compare';
import { DOCTOR_FILE, type DoctorReport } from '../shared/doctor';
import { isFeatureMapFile, type FeatureMapFile } from '../shared/featureMap';
import type { ComparisonView, MapMarks, RunRow } from '../shared/protocol/explore';
import { isObject } from '../shared/protocol/guards';
import { RUN_FILES } from '../shared/runFolder';
import type { Evaluation, EpochMetrics, TrainOptions } from '../shared/types';
import { samePath, type RunEntry } from './runIndex';

export { mainSettings, readRunOptions } from './runIndex';

const shown = (v: unknown): string => (v === undefined ? '—' : String(v));

/** The Runs table: newest first, each with the settings that changed since the run before it. */
export function runRows(
  runs: readonly RunEntry[],
  options: ReadonlyMap<string, Partial<TrainOptions> | undefined>,
  current?: string,
): RunRow[] {
  const sorted = [...runs].sort((a, b) => b.status.startedAt.localeCompare(a.status.startedAt) || b.name.localeCompare(a.name));
  return sorted.map((run, i) => {
    const previous = sorted[i + 1];
    const mine = options.get(run.runDir);
    const changes = previous
      ? settingDifferences(options.get(previous.runDir), mine).map((d) => `${d.name}: ${shown(d.a)} → ${shown(d.b)}`)
      : [];
    const acc = run.status.valAccuracy;
    const wall = run.status.summary?.wallMs;
    return {
      name: run.name,
      startedAt: run.status.startedAt,
      state: run.interrupted ? 'interrupted' : run.status.state,
      ...(mine?.model ? { model: mine.model } : {}),
      ...(typeof acc === 'number' && Number.isFinite(acc) ? { accuracy: acc } : {}),
      ...(typeof wall === 'number' && Number.isFinite(wall) ? { wallMs: wall } : {}),
      changes,
      current: current !== undefined && samePath(run.runDir, current),
    };
  });
}

/** Runs another can be compared with: finished (or cancelled with a model) and not `runDir` itself. */
export function comparableRuns(runs: readonly RunEntry[], runDir: string): RunEntry[] {
  return runs.filter(
    (r) => !samePath(r.runDir, runDir) && (r.status.state === 'finished' || (r.status.state === 'cancelled' && r.status.hasCheckpoint)),
  );
}

/** What the webview gets of a comparison: the run folders' paths left out, the curves and matrices added. */
export function comparisonView(
  comparison: RunComparison,
  a: { epochs: EpochMetrics[]; evaluation: Pick<Evaluation, 'classes' | 'matrix'> },
  b: { epochs: EpochMetrics[]; evaluation: Pick<Evaluation, 'classes' | 'matrix'> },
): ComparisonView {
  const strip = ({ runDir: _runDir, datasetRoot: _root, ...rest }: RunComparison['a']) => rest;
  return {
    comparison: { ...comparison, a: strip(comparison.a), b: strip(comparison.b) },
    epochsA: a.epochs,
    epochsB: b.epochs,
    matrixA: { classes: a.evaluation.classes, matrix: a.evaluation.matrix },
    matrixB: { classes: b.evaluation.classes, matrix: b.evaluation.matrix },
  };
}

/** feature-map.json of a run folder, checked; undefined when the run has none (or it is malformed). */
export async function readFeatureMap(runDir: string): Promise<FeatureMapFile | undefined> {
  try {
    const map: unknown = JSON.parse(await fs.readFile(path.join(runDir, RUN_FILES.featureMap), 'utf8'));
    return isFeatureMapFile(map) ? map : undefined;
  } catch {
    return undefined;
  }
}

/** The newest doctor.json under `runsDir` for `datasetRoot`, as marks per path; none when the doctor has not run. */
export async function readDoctorMarks(runsDir: string, datasetRoot: string): Promise<MapMarks> {
  const names = await fs.readdir(runsDir).catch(() => [] as string[]);
  let newest: { mtime: number; report: DoctorReport } | undefined;
  for (const name of names) {
    const file = path.join(runsDir, name, DOCTOR_FILE);
    try {
      const stat = await fs.stat(file);
      const report: unknown = JSON.parse(await fs.readFile(file, 'utf8'));
      if (!isObject(report) || typeof report.dataset !== 'string' || !samePath(report.dataset, datasetRoot)) continue;
      if (!newest || stat.mtimeMs > newest.mtime) newest = { mtime: stat.mtimeMs, report: report as unknown as DoctorReport };
    } catch {
      // no doctor here
    }
  }
  if (!newest) return {};
  const r = newest.report;
  const doctor: { path: string; finding: string }[] = [];
  for (const i of r.labelIssues ?? []) doctor.push({ path: i.path, finding: `may be ${i.suggested}, not ${i.label}` });
  for (const g of r.nearDuplicates ?? []) for (const p of g.paths) doctor.push({ path: p, finding: 'near-duplicate' });
  for (const o of r.outliers ?? []) doctor.push({ path: o.path, finding: 'outlier' });
  for (const w of r.weakImages ?? []) doctor.push({ path: w.path, finding: w.problem });
  return { doctor: doctor.filter((d) => typeof d.path === 'string') };
}
