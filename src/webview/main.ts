// Entry of the webview bundle (dist/webview.js): registers the VS Code Elements it uses, then
// starts the panel. Everything else lives in modules the unit tests load in jsdom.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-table/index.js';
import '@vscode-elements/elements/dist/vscode-table-body/index.js';
import '@vscode-elements/elements/dist/vscode-table-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header/index.js';
import '@vscode-elements/elements/dist/vscode-table-header-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-row/index.js';
import { startDoctorPanel } from './doctorView';
import { startPanel } from './panelApp';

// Lit adopts constructed stylesheets (not subject to the CSP); where it falls back to <style>
// elements they need the page's nonce, which it reads from `window.litNonce`.
const script = document.currentScript;
if (script instanceof HTMLScriptElement && script.nonce) (window as Window & { litNonce?: string }).litNonce = script.nonce;

const root = document.getElementById('app') ?? document.body;
// The same bundle serves the training panel and the Dataset Doctor panel; the page says which.
if (root.dataset.view === 'doctor') startDoctorPanel(root, acquireVsCodeApi());
else startPanel(root, acquireVsCodeApi());
