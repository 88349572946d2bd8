#!/usr/bin/env node
// The command-line tool is the training bundle run directly (the extension forks the same file).
// Run through a link (npm's global bin, `npx`), argv[1] names the link; the bundle recognises its
// command-line use by this file's real name.
process.argv[1] = __filename;
require('../dist/training.js');
