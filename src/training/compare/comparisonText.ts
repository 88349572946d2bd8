// `image-trainer compare` without --json: the comparison as lines a person reads in a terminal.
import type { FlippedImage, RunComparison, SettingDifference } from '../../shared/compare';

const pct = (x: number | undefined): string => (x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);
const value = (v: SettingDifference['a']): string => (v === undefined ? '(not recorded)' : String(v));
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} pt`;

function flipLine(f: FlippedImage): string {
  const was = [f.pathBefore ? `was ${f.pathBefore}` : '', f.labelBefore ? `labelled ${f.labelBefore} before` : '']
    .filter(Boolean)
    .join(', ');
  return `  ${f.path} (${f.label}): ${f.before} ${pct(f.confidenceBefore)} → ${f.after} ${pct(f.confidenceAfter)}${was ? ` (${was})` : ''}`;
}

/** The comparison of A (before) and B (after) as text lines. */
export function comparisonLines(c: RunComparison): string[] {
  const lines = [`A: ${c.a.name} (${c.a.startedAt}, ${c.a.model})`, `B: ${c.b.name} (${c.b.startedAt}, ${c.b.model})`, ''];
  lines.push(c.settings.length === 0 ? 'Settings: the same' : 'Settings that differ:');
  for (const s of c.settings) lines.push(`  ${s.name}: ${value(s.a)} → ${value(s.b)}`);
  const d = c.dataset;
  lines.push('');
  if (!d.recorded)
    lines.push(`Dataset: ${d.imagesA} → ${d.imagesB} images (a run folder does not list its images: no per-image differences)`);
  else {
    const parts = [
      `${d.added.length} added`,
      `${d.removed.length} removed`,
      `${d.relabelled.length} relabelled`,
      `${d.renamed.length} renamed`,
    ];
    lines.push(`Dataset: ${d.imagesA} → ${d.imagesB} images; ${parts.join(', ')}, ${d.unchanged} unchanged`);
    for (const x of d.added) lines.push(`  + ${x.path}`);
    for (const x of d.removed) lines.push(`  - ${x.path}`);
    for (const x of d.relabelled) lines.push(`  ~ ${x.pathA} (${x.classA}) → ${x.pathB} (${x.classB})`);
    for (const x of d.renamed) lines.push(`  > ${x.pathA} → ${x.pathB}`);
  }
  const m = c.metrics;
  lines.push(
    '',
    `Accuracy: ${pct(m.a.accuracy)} → ${pct(m.b.accuracy)} (${signed(m.b.accuracy - m.a.accuracy)}); macro F1 ${pct(m.a.macroF1)} → ${pct(m.b.macroF1)}`,
  );
  const v = c.validation;
  const others = v.onlyA + v.onlyB > 0 ? `; ${v.onlyA} validated only by A, ${v.onlyB} only by B` : '';
  lines.push(`On the ${v.both} validation images both runs validated: ${pct(m.a.commonAccuracy)} → ${pct(m.b.commonAccuracy)}${others}`);
  if (m.a.calibration || m.b.calibration)
    lines.push(`Calibration error (ECE after scaling): ${pct(m.a.calibration?.eceAfter)} → ${pct(m.b.calibration?.eceAfter)}`);
  lines.push('Per class (precision / recall / F1):');
  const width = Math.max(...m.perClass.map((k) => k.name.length));
  for (const k of m.perClass) {
    const side = (f: (typeof k)['a']) => (f ? `${pct(f.precision)} / ${pct(f.recall)} / ${pct(f.f1)}` : '(not in this run)');
    lines.push(`  ${k.name.padEnd(width)}  ${side(k.a)}  →  ${side(k.b)}`);
  }
  const f = c.flips;
  lines.push(
    '',
    `Flipped: ${f.fixed.length} fixed (wrong → right), ${f.broken.length} broken (right → wrong), ${f.changed.length} wrong differently`,
  );
  for (const [title, list] of [
    ['Fixed', f.fixed],
    ['Broken', f.broken],
    ['Wrong differently', f.changed],
  ] as const) {
    if (list.length === 0) continue;
    lines.push(`${title}:`);
    for (const flip of list) lines.push(flipLine(flip));
  }
  return lines;
}
