// What the user is told when a run fails, and which buttons they get, by kind of failure. Pure
// (no `vscode` import) so the decision is unit-tested; trainingCommands maps each action to a command.
import { FAILURE_LEADS, oneLine } from '../shared/failureLines';
import type { ErrorKind } from '../shared/types';

/** A button on a failure notification. */
export type FailureAction =
  'Open Dataset Report' | 'Open Settings' | 'Retry' | 'Show Diagnostics' | 'Reveal Folder' | 'Open Log' | 'Open Panel';

/** The notification for a failed run: its text and its buttons, most useful first. */
export interface FailureNotice {
  message: string;
  actions: FailureAction[];
}

/** The buttons that fit a failure of this kind; undefined for a cancel, which is not an error. */
export function failureActions(kind: ErrorKind, hasRunDir: boolean): FailureAction[] | undefined {
  const specific = ((): FailureAction[] | undefined => {
    switch (kind) {
      case 'dataset':
        // The run folder holds what the scan found (or its log); without one there is nothing to open.
        return hasRunDir ? ['Open Dataset Report'] : [];
      case 'options':
      case 'model':
        // Both are fixed where the options and the base model are chosen.
        return ['Open Settings'];
      case 'model-download':
        // Networks come back; another base model is a setting away.
        return ['Retry', 'Open Settings'];
      case 'backend':
        return ['Show Diagnostics'];
      case 'disk':
        // Either free space where the run writes, or point the runs and cache folders elsewhere.
        return hasRunDir ? ['Reveal Folder', 'Open Settings'] : ['Open Settings'];
      case 'internal':
        return hasRunDir ? ['Open Log'] : [];
      case 'cancelled':
        return undefined;
    }
  })();
  return specific && [...specific, 'Open Panel'];
}

/** "Training on leaves failed. Dataset problem: …", or undefined for a cancel. */
export function failureNotice(kind: ErrorKind, datasetName: string, message: string, hasRunDir: boolean): FailureNotice | undefined {
  const actions = failureActions(kind, hasRunDir);
  if (!actions) return undefined;
  const lead = FAILURE_LEADS[kind];
  const text = oneLine(message);
  return {
    message: lead ? `Training on ${datasetName} failed. ${lead}: ${text}` : `Training on ${datasetName} failed: ${text}`,
    actions,
  };
}
