// The write floor tool at tiny size: a bare `net` writer and its reader process run, every byte
// written is read, and the JSON line carries the per-write CPU split.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTool } from '../helpers/tool.ts';

test('write-floor measures per-write CPU for a bare writer and its reader', { timeout: 60_000 }, async () => {
  const row = await runTool('write-floor.ts', ['--sockets', '20', '--rate', '2000', '--seconds', '1']);
  assert.equal(row.sockets, 20);
  assert.ok(row.writes_per_s > 1000, `about 2,000 writes/s, got ${row.writes_per_s}`);
  assert.equal(row.bytes_read_ok, true, 'the reader got every frame');
  for (const key of ['writer_user_us_per_write', 'writer_sys_us_per_write', 'reader_us_per_write'])
    assert.ok(Number.isFinite(Number(row[key])), `${key} is a number`);
});
