// Test kit for the panel's webview code: a jsdom window installed as the global DOM (import this
// module first), a fake `acquireVsCodeApi()` that records what the panel posts, and realistic
// evaluation data. jsdom has no canvas, so uPlot gets a 2D context that draws nothing; every
// DOM and logic check stays real.
import { JSDOM } from 'jsdom';
import type { PanelState } from '../../src/shared/protocol/panel';
import type { ClassMetrics, ConfusedPair, EpochMetrics, Evaluation, Prediction } from '../../src/shared/types';
import { seededRandom } from '../../src/training/util/random';

export const dom = new JSDOM('<!DOCTYPE html><html><head></head><body><main id="app"></main></body></html>', {
  pretendToBeVisual: true,
  url: 'https://panel.test/',
});

const g = globalThis as Record<string, unknown>;
const w = dom.window as unknown as Record<string, unknown>;
for (const name of [
  'window',
  'document',
  'Node',
  'Element',
  'HTMLElement',
  'HTMLTableElement',
  'HTMLButtonElement',
  'HTMLSelectElement',
  'HTMLScriptElement',
  'HTMLCanvasElement',
  'HTMLImageElement',
  'DocumentFragment',
  'Text',
  'MutationObserver',
  'Event',
  'CustomEvent',
  'KeyboardEvent',
  'MouseEvent',
  'MessageEvent',
  'getComputedStyle',
  'requestAnimationFrame',
  'cancelAnimationFrame',
  'customElements',
]) {
  g[name] = w[name];
}
if (!('navigator' in globalThis) || g.navigator === undefined) g.navigator = w.navigator;
g.devicePixelRatio = 1;
const matchMedia = (query: string) => ({
  matches: false,
  media: query,
  addListener() {},
  removeListener() {},
  addEventListener() {},
  removeEventListener() {},
  onchange: null,
  dispatchEvent: () => false,
});
g.matchMedia = matchMedia;
w.matchMedia = matchMedia;

/** Path2D stand-in for uPlot's path builders: records nothing. */
g.Path2D = class Path2D {
  constructor() {
    return new Proxy(this, { get: (t, key) => (key in t ? (t as Record<string | symbol, unknown>)[key] : () => undefined) });
  }
};

/** A CanvasRenderingContext2D stand-in: every method is a no-op, text measures 6 px a character. */
function noopContext(canvas: unknown): unknown {
  const target: Record<string | symbol, unknown> = { canvas };
  return new Proxy(target, {
    get(t, key) {
      if (key in t) return t[key];
      if (key === 'measureText')
        return (text: string) => ({ width: String(text).length * 6, actualBoundingBoxAscent: 8, actualBoundingBoxDescent: 2 });
      if (key === 'getLineDash') return () => [];
      return () => undefined;
    },
    set(t, key, value) {
      t[key] = value;
      return true;
    },
  });
}
(dom.window.HTMLCanvasElement.prototype as unknown as { getContext: (id: string) => unknown }).getContext = function (this: unknown) {
  return noopContext(this);
};

/** The VS Code webview API as the panel sees it, recording every message and saved state. */
export interface FakeVsCodeApi {
  posted: unknown[];
  saved: unknown;
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

/** A fake `acquireVsCodeApi()` result, optionally with a previously saved state. */
export function fakeVsCodeApi(saved?: unknown): FakeVsCodeApi {
  const api: FakeVsCodeApi = {
    posted: [],
    saved,
    postMessage(message) {
      api.posted.push(JSON.parse(JSON.stringify(message)));
    },
    getState() {
      return api.saved;
    },
    setState(state) {
      api.saved = JSON.parse(JSON.stringify(state));
    },
  };
  return api;
}

/** A fresh root element in the document. */
export function freshRoot(): HTMLElement {
  const root = dom.window.document.createElement('main');
  root.id = 'app';
  dom.window.document.body.replaceChildren(root);
  return root;
}

/** Sends a host message the way VS Code delivers it (a `message` event on window). */
export function deliver(message: unknown): void {
  dom.window.dispatchEvent(new dom.window.MessageEvent('message', { data: message }));
}

/** Waits for uPlot's deferred drawing and other microtasks and timers. */
export function settle(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const round4 = (x: number): number => Math.round(x * 10000) / 10000;

/** Evaluation of `predictions` over `classes`: matrix, per-class metrics, averages, most confused. */
export function evaluationOf(classes: string[], predictions: Prediction[], bestEpoch = 1): Evaluation {
  const n = classes.length;
  const matrix = classes.map(() => new Array<number>(n).fill(0));
  for (const p of predictions) matrix[p.actual]![p.predicted]!++;
  const perClass: ClassMetrics[] = classes.map((name, i) => {
    const tp = matrix[i]![i]!;
    const support = matrix[i]!.reduce((a, b) => a + b, 0);
    const predicted = matrix.reduce((a, row) => a + row[i]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support };
  });
  const total = predictions.length;
  const mean = (k: 'precision' | 'recall' | 'f1') => perClass.reduce((a, c) => a + c[k], 0) / n;
  const weighted = (k: 'precision' | 'recall' | 'f1') => perClass.reduce((a, c) => a + c[k] * c.support, 0) / Math.max(1, total);
  const mostConfused: ConfusedPair[] = [];
  for (let a = 0; a < n; a++)
    for (let p = 0; p < n; p++) if (a !== p && matrix[a]![p]! > 0) mostConfused.push({ actual: a, predicted: p, count: matrix[a]![p]! });
  mostConfused.sort((x, y) => y.count - x.count);
  return {
    classes,
    matrix,
    accuracy: predictions.filter((p) => p.actual === p.predicted).length / Math.max(1, total),
    perClass,
    macro: { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') },
    weighted: { precision: weighted('precision'), recall: weighted('recall'), f1: weighted('f1') },
    mostConfused,
    predictions,
    bestEpoch,
  };
}

/** `perClass` validation images per class with seeded predictions (`accuracy` of them right). */
export function syntheticEvaluation(
  classes: string[],
  perClass: number,
  options: { seed?: number; accuracy?: number; bestEpoch?: number; pathOf?: (cls: string, i: number) => string } = {},
): Evaluation {
  const random = seededRandom(options.seed ?? 7);
  const accuracy = options.accuracy ?? 0.85;
  const pathOf = options.pathOf ?? ((cls: string, i: number) => `${cls}/img ${String(i).padStart(4, '0')}.jpg`);
  const predictions: Prediction[] = [];
  classes.forEach((cls, actual) => {
    for (let i = 0; i < perClass; i++) {
      const predicted =
        random() < accuracy || classes.length === 1 ? actual : (actual + 1 + Math.floor(random() * (classes.length - 1))) % classes.length;
      const top = 0.35 + random() * 0.64;
      const rest = classes.map((_, j) => (j === predicted ? 0 : random()));
      const restSum = rest.reduce((a, b) => a + b, 0) || 1;
      const probs = classes.map((_, j) => round4(j === predicted ? top : ((1 - top) * rest[j]!) / restSum));
      predictions.push({ path: pathOf(cls, i), actual, predicted, confidence: probs[predicted]!, probs });
    }
  });
  return evaluationOf(classes, predictions, options.bestEpoch ?? 1);
}

/** Per-epoch metrics: head epochs, then fine-tuning, with one learning-rate drop. */
export function syntheticEpochs(count: number, options: { fineTuneFrom?: number; lrDropAt?: number } = {}): EpochMetrics[] {
  const epochs: EpochMetrics[] = [];
  for (let e = 1; e <= count; e++) {
    const fineTune = options.fineTuneFrom !== undefined && e >= options.fineTuneFrom;
    const lr = fineTune ? 1e-5 : options.lrDropAt !== undefined && e >= options.lrDropAt ? 5e-4 : 1e-3;
    epochs.push({
      stage: fineTune ? 'fine-tune' : 'head',
      epoch: e,
      loss: 1.2 / e,
      acc: 1 - 0.5 / e,
      valLoss: 1.3 / e + 0.05,
      valAcc: 0.95 - 0.5 / e,
      lr,
      durationMs: 800,
    });
  }
  return epochs;
}

/** A full panel state around an evaluation. */
export function sampleState(overrides: Partial<PanelState> = {}): PanelState {
  const evaluation = overrides.evaluation;
  const classes = evaluation?.classes ?? ['black_rot', 'cedar_rust', 'healthy', 'scab'];
  return {
    runId: 'leaves-20250101-120000',
    runName: 'leaves-20250101-120000',
    state: 'running',
    datasetName: 'leaves',
    imageBaseUri: 'https://file+.vscode-resource.vscode-cdn.net/data/leaves',
    dataset: {
      name: 'leaves',
      layout: 'folders',
      classes: classes.map((name) => ({ name, train: 24, val: 6, test: 0 })),
      emptyClasses: [],
      skipped: [
        { path: 'scab/notes.txt', reason: 'not-image', detail: 'text file' },
        { path: 'healthy/empty.jpg', reason: 'empty', detail: '0 bytes' },
        { path: 'scab/huge.png', reason: 'too-many-pixels', detail: '20000×20000 pixels' },
      ],
      duplicates: [],
      ignored: 1,
      warnings: [],
    },
    backend: {
      backend: 'wasm',
      summary: 'WebAssembly (4 threads): @tensorflow/tfjs-node-gpu is not installed; @tensorflow/tfjs-node is not installed',
      attempts: [
        { backend: 'tensorflow-gpu', status: 'missing', detail: 'module not installed' },
        { backend: 'tensorflow', status: 'missing', detail: 'module not installed' },
        { backend: 'wasm', status: 'ok', detail: '4 threads' },
      ],
    },
    model: { id: 'mobilenet_v2_0.35', name: 'MobileNetV2 0.35', inputSize: 224, featureSize: 1280 },
    options: {
      model: 'mobilenet_v2_0.35',
      epochs: 20,
      batchSize: 32,
      learningRate: 1e-3,
      valSplit: 0.2,
      seed: 42,
      hiddenUnits: 128,
      dropout: 0.2,
      classWeights: false,
      patience: 5,
      lrPatience: 3,
      lrFactor: 0.5,
      fineTuneLayers: 0,
      fineTuneEpochs: 5,
      fineTuneLearningRate: 1e-5,
      backend: 'auto',
      maxPixels: 100_000_000,
      timeLimitMinutes: 0,
      followExternalLinks: false,
      recipe: 'auto',
      refit: false,
    },
    progress: { stage: 'head', done: 3, total: 4, epoch: 3, epochs: 20, imagesPerSec: 412.5, etaSec: 42 },
    epochs: syntheticEpochs(3),
    moved: [],
    ...overrides,
  };
}
