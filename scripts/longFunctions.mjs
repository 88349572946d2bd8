// Lists functions/methods longer than N lines in TS files (uses the TypeScript compiler API).
import ts from 'typescript';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
const limit = Number(process.argv[2] ?? 80);
const dirs = process.argv.slice(3);
const files = execFileSync('git', ['ls-files', ...dirs], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => f.endsWith('.ts'));
for (const f of files) {
  const sf = ts.createSourceFile(f, fs.readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (n) => {
    if (
      (ts.isFunctionDeclaration(n) ||
        ts.isMethodDeclaration(n) ||
        ts.isArrowFunction(n) ||
        ts.isFunctionExpression(n) ||
        ts.isConstructorDeclaration(n)) &&
      n.body
    ) {
      const a = sf.getLineAndCharacterOfPosition(n.getStart()).line,
        b = sf.getLineAndCharacterOfPosition(n.end).line;
      if (b - a + 1 > limit) {
        const name = n.name?.getText?.() ?? (ts.isVariableDeclaration(n.parent) ? n.parent.name.getText() : '(anonymous)');
        console.log(`${f}:${a + 1} ${name} ${b - a + 1}`);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
}
