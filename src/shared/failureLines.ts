// How a failure reads, by kind, so the command line, the notification and the panel use the same
// words for the same problem.
import type { ErrorKind } from './types';

/** The words a failure line starts with ("Dataset problem: …"); empty where the message says it all. */
export const FAILURE_LEADS: Readonly<Record<ErrorKind, string>> = {
  dataset: 'Dataset problem',
  options: 'Invalid options',
  model: 'Base model problem',
  'model-download': 'Model download failed',
  backend: 'Backend unavailable',
  disk: 'Cannot write',
  cancelled: 'Cancelled',
  // An unexpected failure has no better words than its own message.
  internal: '',
};

/** The message on one line: a failure is shown in one terminal line or one notification. */
export function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** "Dataset problem: <message> (run folder: <dir>)": one line for a failure of this kind. */
export function failureLine(kind: ErrorKind, message: string, runDir?: string): string {
  const lead = FAILURE_LEADS[kind];
  const text = oneLine(message);
  return `${lead ? `${lead}: ${text}` : text}${runDir ? ` (run folder: ${runDir})` : ''}`;
}
