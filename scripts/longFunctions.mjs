// Lists functions, methods and arrow functions longer than a limit, so that code stays in pieces
// a reader can name. `npm run lint` runs it on the engine: `node scripts/longFunctions.mjs 80 src/training`
// exits 1 when a function other than the allowed ones is longer.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import ts from 'typescript';

// The ONNX exporter's per-layer switch reads best as one switch over the layer kinds.
const ALLOWED = new Set(['src/training/onnx/onnxExport.ts convertLayer']);

const limit = Number(process.argv[2] ?? 80);
const roots = process.argv.slice(3);
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', ...roots], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => f.endsWith('.ts') && fs.existsSync(f));
let over = 0;
for (const file of files) {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    const isFunction =
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node) ||
      ts.isConstructorDeclaration(node);
    if (isFunction && node.body) {
      const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const last = source.getLineAndCharacterOfPosition(node.end).line;
      const lines = last - first + 1;
      const name =
        node.name?.getText() ?? (node.parent && ts.isVariableDeclaration(node.parent) ? node.parent.name.getText() : '(anonymous)');
      if (lines > limit && !ALLOWED.has(`${file} ${name}`)) {
        console.log(`${file}:${first + 1} ${name} is ${lines} lines (limit ${limit})`);
        over++;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
process.exitCode = over > 0 ? 1 : 0;
