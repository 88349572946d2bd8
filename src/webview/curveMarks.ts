// Events worth marking on the training curves, derived from the per-epoch metrics.
import type { EpochMetrics } from '../shared/types';
import { formatLearningRate } from './displayFormat';

export type CurveMarkKind = 'best' | 'fine-tune' | 'lr';

export interface CurveMark {
  kind: CurveMarkKind;
  epoch: number;
  label: string;
}

/** Marks for: the start of fine-tuning, every learning-rate change within a stage, and the best (kept) epoch. */
export function curveMarks(epochs: readonly EpochMetrics[], bestEpoch: number | undefined): CurveMark[] {
  const marks: CurveMark[] = [];
  for (let i = 1; i < epochs.length; i++) {
    const previous = epochs[i - 1]!;
    const current = epochs[i]!;
    if (current.stage === 'fine-tune' && previous.stage !== 'fine-tune') {
      marks.push({
        kind: 'fine-tune',
        epoch: current.epoch,
        label: `Fine-tuning from epoch ${current.epoch} (learning rate ${formatLearningRate(current.lr)})`,
      });
    } else if (current.lr !== previous.lr) {
      marks.push({
        kind: 'lr',
        epoch: current.epoch,
        label: `Learning rate ${formatLearningRate(previous.lr)} → ${formatLearningRate(current.lr)} at epoch ${current.epoch}`,
      });
    }
  }
  if (epochs.length > 0 && epochs[0]!.stage === 'fine-tune') {
    marks.unshift({ kind: 'fine-tune', epoch: epochs[0]!.epoch, label: `Fine-tuning from epoch ${epochs[0]!.epoch}` });
  }
  if (bestEpoch !== undefined && bestEpoch > 0) {
    const best = epochs.find((e) => e.epoch === bestEpoch);
    const detail = best ? ` (validation accuracy ${(best.valAcc * 100).toFixed(1)}%, loss ${best.valLoss.toPrecision(3)})` : '';
    marks.push({ kind: 'best', epoch: bestEpoch, label: `Best epoch ${bestEpoch}, weights kept${detail}` });
  }
  return marks;
}
