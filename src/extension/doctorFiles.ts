// The files of the dataset doctor the extension reads and writes, all in the runs folder, never in
// the dataset: a check's doctor.json (validated before use) and the findings the user chose to keep
// (`doctor-kept.json`, one list of finding keys per dataset), so a kept finding is not shown again,
// in this check or the next. No `vscode` import: unit-tested.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DOCTOR_FILE, type DoctorReport } from '../shared/doctor';
import { isDoctorReport } from '../shared/protocol/doctorPanel';

/** The kept findings of every dataset whose checks are in this runs folder. */
export const KEPT_FILE = 'doctor-kept.json';

interface KeptFile {
  version: 1;
  /** Dataset root (absolute) → finding keys. */
  datasets: Record<string, string[]>;
}

/** True for a doctor check's folder name: `doctor-<dataset>-<YYYYMMDD-HHMMSS>` (a `-N` suffix when two start in one second). */
export function isDoctorFolderName(folderName: string, datasetName: string): boolean {
  const prefix = `doctor-${datasetName}-`;
  return folderName.startsWith(prefix) && /^\d{8}-\d{6}(-\d+)?$/.test(folderName.slice(prefix.length));
}

/** The report of a check folder, or undefined (with the reason) when it is missing or not a doctor report. */
export async function readDoctorReport(checkDir: string): Promise<{ report: DoctorReport } | { problem: string }> {
  let text: string;
  try {
    text = await fs.readFile(path.join(checkDir, DOCTOR_FILE), 'utf8');
  } catch {
    return { problem: `${DOCTOR_FILE} not found in ${checkDir}` };
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return isDoctorReport(parsed) ? { report: parsed } : { problem: `${DOCTOR_FILE} in ${checkDir} is not a doctor report` };
  } catch {
    return { problem: `${DOCTOR_FILE} in ${checkDir} is not valid JSON` };
  }
}

async function readKeptFile(runsDir: string): Promise<KeptFile> {
  try {
    const parsed = JSON.parse(await fs.readFile(path.join(runsDir, KEPT_FILE), 'utf8')) as Partial<KeptFile>;
    if (parsed.version !== 1 || typeof parsed.datasets !== 'object' || parsed.datasets === null) return { version: 1, datasets: {} };
    const datasets: Record<string, string[]> = {};
    for (const [root, keys] of Object.entries(parsed.datasets)) {
      if (Array.isArray(keys)) datasets[root] = keys.filter((k): k is string => typeof k === 'string');
    }
    return { version: 1, datasets };
  } catch {
    return { version: 1, datasets: {} };
  }
}

/** The keys of the findings the user kept for a dataset. */
export async function readKept(runsDir: string, datasetRoot: string): Promise<Set<string>> {
  return new Set((await readKeptFile(runsDir)).datasets[path.resolve(datasetRoot)] ?? []);
}

/** Remembers that the user keeps a finding (written atomically beside the checks, outside the dataset). */
export async function addKept(runsDir: string, datasetRoot: string, key: string): Promise<void> {
  const file = await readKeptFile(runsDir);
  const root = path.resolve(datasetRoot);
  const keys = new Set(file.datasets[root] ?? []);
  if (keys.has(key)) return;
  keys.add(key);
  file.datasets[root] = [...keys];
  await fs.mkdir(runsDir, { recursive: true });
  const target = path.join(runsDir, KEPT_FILE);
  const tmp = `${target}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(file, null, 1)}\n`);
  await fs.rename(tmp, target);
}
