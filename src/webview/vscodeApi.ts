// The slice of the webview API VS Code injects as the global `acquireVsCodeApi()`.
// Tests pass a fake with the same shape: postMessage is the boundary they observe.
export interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare global {
  function acquireVsCodeApi(): VsCodeApi;
}
