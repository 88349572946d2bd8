// Stands in for the `vscode` module in runtimes that must not use it (training process, webview):
// it exports nothing, so any use of the VS Code API there fails to compile.
export {};
