// Runs inside the extension host of code-server (the workbench's `extensionTestsPath`): the host
// calls run(), which executes the mocha suites of test/host/ bundled by hostSuites.e2e.ts and
// writes their results to the file named by IMAGE_TRAINER_HOST_TEST_RESULTS.
import * as fs from 'node:fs';
import Mocha from 'mocha';

export interface HostTestResults {
  passed: string[];
  failed: string[];
  pending: string[];
}

/** Registers the BDD and TDD globals, loads the suites, runs them and resolves when all passed. */
export function runSuites(loadSuites: () => void): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  Mocha.interfaces.tdd(mocha.suite);
  mocha.suite.emit('pre-require', globalThis, 'test/host', mocha);
  loadSuites();
  const results: HostTestResults = { passed: [], failed: [], pending: [] };
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const file = process.env.IMAGE_TRAINER_HOST_TEST_RESULTS;
      if (file) fs.writeFileSync(file, JSON.stringify(results, null, 1));
      if (failures > 0) reject(new Error(`${failures} host test(s) failed`));
      else resolve();
    });
    runner.on('pass', (test) => results.passed.push(test.fullTitle()));
    runner.on('fail', (test, error: Error) => results.failed.push(`${test.fullTitle()}: ${error.stack ?? error.message}`));
    runner.on('pending', (test) => results.pending.push(test.fullTitle()));
  });
}
