// Colours for the canvas charts, read from VS Code's `--vscode-*` theme variables (canvas cannot use var()).

export interface ChartColors {
  train: string;
  validation: string;
  text: string;
  grid: string;
  font: string;
}

/** Reads the first defined of the given CSS variables on the document root. */
export function cssVariable(names: readonly string[], fallback: string): string {
  const root = getComputedStyle(document.documentElement);
  const body = document.body ? getComputedStyle(document.body) : root;
  for (const name of names) {
    const value = root.getPropertyValue(name).trim() || body.getPropertyValue(name).trim();
    if (value) return value;
  }
  return fallback;
}

/** The chart colours of the current theme. */
export function chartColors(): ChartColors {
  const text = cssVariable(['--vscode-foreground', '--vscode-editor-foreground'], 'CanvasText');
  const family = cssVariable(['--vscode-font-family'], 'sans-serif');
  const size = cssVariable(['--vscode-font-size'], '12px');
  return {
    train: cssVariable(['--vscode-charts-blue'], text),
    validation: cssVariable(['--vscode-charts-orange', '--vscode-charts-red'], text),
    text,
    grid: cssVariable(
      [
        '--vscode-editorIndentGuide-background1',
        '--vscode-editorIndentGuide-background',
        '--vscode-panel-border',
        '--vscode-widget-border',
      ],
      'GrayText',
    ),
    font: `${size} ${family}`,
  };
}

/** Calls `onChange` when VS Code switches theme (it rewrites the body class and the root style). */
export function watchTheme(onChange: () => void): () => void {
  if (typeof MutationObserver === 'undefined') return () => undefined;
  const observer = new MutationObserver(() => onChange());
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
  if (document.body) observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
  return () => observer.disconnect();
}
