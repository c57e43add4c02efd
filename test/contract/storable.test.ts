// What PostgreSQL can store: the predicate and the walker that names the first offending place.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  escapeUnstorable,
  findUnstorable,
  isStorableString,
  MAX_JSON_DEPTH,
  storableString,
  toStorable,
} from '../../src/contract/storable.ts';

test('NUL and lone surrogates are unstorable; text, emoji and U+FFFD are storable', () => {
  for (const s of ['', 'plain', 'é 日本', '😀', 'a\uFFFDb', '\u0001\u001f', 'x\ud83d\ude00y']) {
    assert.equal(isStorableString(s), true, JSON.stringify(s));
  }
  for (const s of ['\u0000', 'a\u0000b', '\ud800', '\udfff', 'x\ud83d', '\ude00y', '\ude00\ud83d']) {
    assert.equal(isStorableString(s), false, escapeUnstorable(s));
  }
});

test('the walker names the first unstorable value or key by its path, nested in objects and arrays', () => {
  assert.equal(findUnstorable({ a: 'ok', b: [1, { c: '😀' }], d: null, e: true }), undefined);
  assert.deepEqual(findUnstorable({ a: { b: 'x\u0000' } }), { path: ['a', 'b'], in: 'value' });
  assert.deepEqual(findUnstorable({ a: ['ok', '\ud800'] }), { path: ['a', 1], in: 'value' });
  assert.deepEqual(findUnstorable({ a: { 'k\u0000': 1 } }), { path: ['a', 'k\u0000'], in: 'key' });
  assert.deepEqual(findUnstorable('\udc00'), { path: [], in: 'value' });
  // Document order: the first of several.
  assert.deepEqual(findUnstorable({ a: 'ok', b: '\u0000', c: '\ud800' }), { path: ['b'], in: 'value' });
});

test('nesting deeper than MAX_JSON_DEPTH is named, at any depth JSON.parse accepts', () => {
  const deep = JSON.parse(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
  const place = findUnstorable(deep);
  assert.equal(place?.in, 'depth');
  assert.equal(place?.path[0], 'a');
  assert.equal(place?.path.length, MAX_JSON_DEPTH);
  let ok: unknown = [];
  for (let i = 1; i < MAX_JSON_DEPTH; i++) ok = [ok];
  assert.equal(findUnstorable(ok), undefined, 'exactly MAX_JSON_DEPTH levels are fine');
  assert.doesNotThrow(() => JSON.stringify(ok), 'and JSON.stringify takes them');
});

test('escapeUnstorable shows NUL and lone surrogates as \\u escapes and keeps pairs', () => {
  assert.equal(escapeUnstorable('a\u0000b\ud800c😀\udc00'), 'a\\u0000b\\ud800c😀\\udc00');
  assert.equal(isStorableString(escapeUnstorable('\u0000\ud800')), true);
});

test('toStorable: NUL and lone surrogates become U+FFFD in values and keys; a storable value is returned as is', () => {
  const clean = { a: 'ok', b: ['😀', 1, null, { c: true }] };
  assert.equal(toStorable(clean), clean, 'no copy when nothing needs changing');
  assert.equal(toStorable('cut \u0000 here'), 'cut \uFFFD here');
  assert.equal(toStorable('half \ud800'), 'half \uFFFD');
  assert.equal(toStorable('pair 😀 kept'), 'pair 😀 kept');
  assert.deepEqual(toStorable({ 'k\u0000': ['x\udc00y', { z: '\u0000' }] }), {
    'k\uFFFD': ['x\uFFFDy', { z: '\uFFFD' }],
  });
  assert.equal(
    findUnstorable(toStorable({ deep: JSON.parse('['.repeat(600) + ']'.repeat(600)) })),
    undefined,
  );
  assert.equal(storableString('\u0000\ud800\udfff'), '\uFFFD\ud800\udfff', 'a valid pair stays');
});
