// The page of one of the extension's webview panels (training, Dataset Doctor): the shared bundle,
// panel.css (plus the view's own stylesheet) and a fresh nonce, from the extension's own folders.
import * as vscode from 'vscode';
import { createNonce, panelHtml } from './panelHtml';

/** The HTML of a panel showing `view` (the bundle starts the app the page names). */
export function webviewPageHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  title: string,
  view: 'training' | 'doctor' = 'training',
): string {
  const asset = (...segments: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...segments)).toString();
  return panelHtml({
    cspSource: webview.cspSource,
    nonce: createNonce(),
    scriptUri: asset('dist', 'webview.js'),
    styleUri: asset('media', 'panel.css'),
    extraStyleUri: view === 'doctor' ? asset('media', 'doctor.css') : undefined,
    title,
    view,
  });
}

/** A message from a webview, shortened for a log line (it may be anything, even unserialisable). */
export function safeDescribe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 200) ?? String(value);
  } catch {
    return typeof value;
  }
}
