// The training panel's HTML shell with its Content-Security-Policy. No `vscode` import, so the
// browser check renders exactly this page.
import { randomBytes } from 'node:crypto';

export interface PanelHtmlInput {
  /** `webview.cspSource`: the origin the webview may load its own files (and the dataset's images) from. */
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
  /** A second stylesheet (the Doctor view's). */
  extraStyleUri?: string;
  title: string;
  /** Which app the bundle starts in the page (`training` when absent). */
  view?: 'training' | 'doctor';
}

/** A fresh nonce for one page load. */
export function createNonce(): string {
  return randomBytes(18).toString('base64');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The Content-Security-Policy: nothing but our nonce'd script, our styles and images from the webview source. */
export function panelContentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource}`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
  ].join('; ');
}

/** The page: the stylesheet, a root element and the bundle. */
export function panelHtml(input: PanelHtmlInput): string {
  const nonce = escapeHtml(input.nonce);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(panelContentSecurityPolicy(input.cspSource, input.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(input.styleUri)}" nonce="${nonce}">
${input.extraStyleUri ? `<link rel="stylesheet" href="${escapeHtml(input.extraStyleUri)}" nonce="${nonce}">\n` : ''}<title>${escapeHtml(input.title)}</title>
</head>
<body>
<main id="app" aria-live="off"${input.view && input.view !== 'training' ? ` data-view="${escapeHtml(input.view)}"` : ''}></main>
<script nonce="${nonce}" src="${escapeHtml(input.scriptUri)}"></script>
</body>
</html>`;
}
