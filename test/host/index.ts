// Entry of the host-side integration tests: VS Code's extension host calls `run()` when started
// with `extensionTestsPath` pointing at the compiled form of this file. Compile every file of this
// folder one-to-one (not bundled: mocha loads each suite file itself), e.g.
//   esbuild test/host/*.ts --platform=node --format=cjs --outdir=out/test/host
// and pass out/test/host/index.js. Suites import only `vscode`, Node and types.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

/** Runs every `*.test.js` beside this file; rejects when a test fails. */
export function run(): Promise<void> {
  // IMAGE_TRAINER_HOST_GREP runs only the tests whose full title matches (a regular expression).
  const grep = process.env.IMAGE_TRAINER_HOST_GREP;
  const mocha = new Mocha({ ui: 'bdd', timeout: 180_000, color: false, reporter: 'spec', ...(grep ? { grep: new RegExp(grep) } : {}) });
  const files = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort();
  for (const file of files) mocha.addFile(path.join(__dirname, file));
  const resultFile = process.env.IMAGE_TRAINER_HOST_RESULT;
  return new Promise((resolve, reject) => {
    const results = { passed: [] as string[], failed: [] as string[] };
    const runner = mocha.run((failures) => {
      if (resultFile) fs.writeFileSync(resultFile, JSON.stringify({ failures, ...results }, null, 1));
      if (failures > 0) reject(new Error(`${failures} host test(s) failed`));
      else resolve();
    });
    runner.on('pass', (test) => results.passed.push(test.fullTitle()));
    runner.on('fail', (test, error: Error) => results.failed.push(`${test.fullTitle()}: ${error.message}`));
  });
}
