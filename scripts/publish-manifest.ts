// The two `engines` claims of this package. A clone runs its CLI on the Node 24 that npm installs
// (bin/taskwire.js runs itself again on it), so on the machine's older Node its honest claim is
// ">=20", and npm's first `npx taskwire` there prints no EBADENGINE. The published package runs on
// the user's own Node, which must be >= 22.18 (graphile-worker; stack.md): `npm pack` and
// `npm publish` write that claim for the tarball (prepack) and put the clone's back (postpack).
// Usage: node scripts/publish-manifest.ts apply|restore
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const CLONE_ENGINES = { node: '>=20' };
export const PUBLISHED_ENGINES = { node: '>=22.18' };

type Manifest = Record<string, unknown>;

/** The manifest as published: the same, but with the installed package's engines. */
export function publishedManifest(manifest: Manifest): Manifest {
  return { ...manifest, engines: PUBLISHED_ENGINES };
}

/** The manifest as the clone keeps it. */
export function cloneManifest(manifest: Manifest): Manifest {
  return { ...manifest, engines: CLONE_ENGINES };
}

if (import.meta.main) {
  const file = path.resolve(import.meta.dirname, '../package.json');
  const change = { apply: publishedManifest, restore: cloneManifest }[process.argv[2] ?? ''];
  if (!change) {
    process.stderr.write('usage: node scripts/publish-manifest.ts apply|restore\n');
    process.exit(64);
  }
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  writeFileSync(file, `${JSON.stringify(change(manifest), null, 2)}\n`);
}
