// The SDK must run in browsers as well as Node: it imports only `phoenix` and its own files, and
// touches no Node-only globals. (browser.test.ts runs it in Chromium; this catches a slip early.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/client');
const CONTRACT = path.resolve(DIR, '../contract');

test('the contract modules the SDK loads import nothing at run time', () => {
  for (const file of ['task.ts', 'events.ts', 'topics.ts', 'errors.ts']) {
    const source = readFileSync(path.join(CONTRACT, file), 'utf8');
    const runtime = [...source.matchAll(/^import (?!type )[^;]*from\s+'([^']+)'/gm)].map((m) => m[1]);
    assert.deepEqual(runtime, [], `${file} imports ${runtime} at run time`);
  }
});

/** Contract modules with no imports of their own: the SDK may use their values in a browser. */
const PURE_CONTRACT = /^\.\.\/contract\/(task|events|topics|errors)\.ts$/;

test('src/client imports only phoenix, itself and the pure contract modules, and uses no Node-only globals', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('index.ts'));
  for (const file of files) {
    const source = readFileSync(path.join(DIR, file), 'utf8');
    for (const [statement, specifier] of source.matchAll(/^(?:import|export)[^;]*?\bfrom\s+'([^']+)'/gms)) {
      const typeOnly = /^(import|export) type /.test(statement);
      assert.ok(
        specifier === 'phoenix' ||
          /^\.\/[\w-]+\.ts$/.test(specifier) ||
          PURE_CONTRACT.test(specifier) ||
          (typeOnly && specifier === '../contract/index.ts'),
        `${file} imports ${specifier}: only phoenix, ./files and the pure contract modules (types from ../contract/index.ts)`,
      );
    }
    const code = source.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const global of ['process.', 'Buffer', 'require(', '__dirname', 'setImmediate']) {
      assert.ok(!code.includes(global), `${file} uses ${global}`);
    }
  }
});

test('src/react imports only react, the SDK and itself, and uses no Node-only globals', () => {
  const dir = path.resolve(DIR, '../react');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('index.ts'));
  for (const file of files) {
    const source = readFileSync(path.join(dir, file), 'utf8');
    for (const [, specifier] of source.matchAll(/^(?:import|export)[^;]*?\bfrom\s+'([^']+)'/gms)) {
      assert.ok(
        specifier === 'react' || specifier === '../client/index.ts' || /^\.\/[\w-]+\.ts$/.test(specifier),
        `${file} imports ${specifier}: only react, ../client/index.ts and ./files`,
      );
    }
    const code = source.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const global of ['process.', 'Buffer', 'require(', '__dirname', 'setImmediate']) {
      assert.ok(!code.includes(global), `${file} uses ${global}`);
    }
  }
});
