// Stage 8: the final model in the run folder.
import { RUN_FILES } from '../../../shared/runFolder';
import { saveModelDir } from '../../models/classifierModel';
import type { RunStage } from '../runContext';

/**
 * Makes sure the model folder holds the kept weights. The loop restored the best weights, which
 * the last checkpoint already holds, so the model is written only when no checkpoint was.
 */
export const saveStage: RunStage = {
  name: 'save',
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const { classifier, metadata } = ctx.need('head');
    ctx.progress.offer({ stage: 'save', done: 0, total: 1 });
    if (!ctx.writer.currentStatus.hasCheckpoint) await saveModelDir(classifier, ctx.writer.file(RUN_FILES.modelDir), metadata, tf);
  },
};
