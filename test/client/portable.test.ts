// The SDK must run in browsers as well as Node: it imports only `phoenix` and its own files, and
// touches no Node-only globals. (browser.test.ts runs it in Chromium; this catches a slip early.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/client');

test('src/client imports only phoenix and itself, and uses no Node-only globals', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('index.ts'));
  for (const file of files) {
    const source = readFileSync(path.join(DIR, file), 'utf8');
    for (const [, specifier] of source.matchAll(/\bfrom\s+'([^']+)'/g)) {
      assert.ok(
        specifier === 'phoenix' || /^\.\/[\w-]+\.ts$/.test(specifier),
        `${file} imports ${specifier}: only phoenix and ./files may be imported`,
      );
    }
    const code = source.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const global of ['process.', 'Buffer', 'require(', '__dirname', 'setImmediate']) {
      assert.ok(!code.includes(global), `${file} uses ${global}`);
    }
  }
});
