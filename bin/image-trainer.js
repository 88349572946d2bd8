#!/usr/bin/env node
// The command-line tool is the training bundle run directly (the extension forks the same file).
require('../dist/training.js');
