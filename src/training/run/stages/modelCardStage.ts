// Stage: MODEL_CARD.md, once the model folder and evaluation are final.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, type ModelMetadata, type RunConfig } from '../../../shared/runFolder';
import type { DatasetReport, Evaluation } from '../../../shared/types';
import { writeFileAtomic } from '../../util/atomicWrite';
import { renderModelCard } from '../modelCard';
import type { RunStage } from '../runContext';

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fs.promises.readFile(file, 'utf8')) as T;
}

/** Writes MODEL_CARD.md from the run folder's own files, so the card says what the saved model is, not what the run meant to save. */
export const modelCardStage: RunStage = {
  name: 'modelCard',
  async run(ctx) {
    const file = (name: string) => ctx.writer.file(name);
    const card = renderModelCard({
      runName: path.basename(ctx.runDir),
      config: await readJson<RunConfig>(file(RUN_FILES.config)),
      dataset: await readJson<DatasetReport>(file(RUN_FILES.datasetReport)),
      evaluation: await readJson<Evaluation>(file(RUN_FILES.evaluation)),
      metadata: await readJson<ModelMetadata>(file(`${RUN_FILES.modelDir}/${RUN_FILES.metadata}`)),
    });
    await writeFileAtomic(file(RUN_FILES.modelCard), card);
  },
};
