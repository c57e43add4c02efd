// How the CLI reads task input and shows time: key=value pairs parse as JSON when they can,
// --input is a JSON object, and durations read at a glance.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildInput, parsePair } from '../../src/cli/commands.ts';
import { CliError } from '../../src/cli/connect.ts';
import { formatDuration, shortId } from '../../src/cli/watch-view.ts';

test('key=value: JSON values when they parse, text otherwise', () => {
  assert.deepEqual(parsePair('steps=5'), ['steps', 5]);
  assert.deepEqual(parsePair('dry=true'), ['dry', true]);
  assert.deepEqual(parsePair('tags=["a","b"]'), ['tags', ['a', 'b']]);
  assert.deepEqual(parsePair('message=hello world'), ['message', 'hello world']);
  assert.deepEqual(parsePair('id="007"'), ['id', '007'], 'quotes keep a number-like string');
  assert.deepEqual(parsePair('expr=a=b'), ['expr', 'a=b'], 'only the first = splits');
  assert.deepEqual(parsePair('empty='), ['empty', '']);
  assert.throws(() => parsePair('=5'), CliError);
  assert.throws(() => parsePair('steps'), CliError);
});

test('--input is a JSON object; pairs override its fields', () => {
  assert.deepEqual(buildInput('{"steps": 3, "interval_ms": 10}', ['steps=4']), { steps: 4, interval_ms: 10 });
  assert.deepEqual(buildInput(undefined, []), {});
  assert.throws(() => buildInput('[1]', []), /JSON object/);
  assert.throws(() => buildInput('{nope', []), /not JSON/);
});

test('durations and short ids', () => {
  assert.equal(formatDuration(undefined), '--');
  assert.equal(formatDuration(Number.POSITIVE_INFINITY), '--');
  assert.equal(formatDuration(0.4), '0s');
  assert.equal(formatDuration(59.4), '59s');
  assert.equal(formatDuration(61), '1m01s');
  assert.equal(formatDuration(3 * 3600 + 125), '3h02m');
  // UUIDv7s made in the same millisecond share their head: the tail tells them apart.
  assert.equal(shortId('01a205e2-de9b-76fd-aa05-874685c6bb62'), '85c6bb62');
});
