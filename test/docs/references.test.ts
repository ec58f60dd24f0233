/**
 * Every `docs/<name>.md` that the code, the tests or the docs point a reader to exists in the
 * project (a reference to a missing document sends people nowhere).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SKIP = new Set(['node_modules', '.git', 'runs', 'demos', 'public']);

function* sources(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (/\.(ts|md|mjs|sh)$/.test(e.name)) yield p;
  }
}

test('every docs/*.md reference names a file in docs/', () => {
  const missing: string[] = [];
  let refs = 0;
  for (const file of sources(root)) {
    const text = fs.readFileSync(file, 'utf8');
    // The slash-less form ("docs" then a space) counts too: it has been written that way.
    for (const m of text.matchAll(/\bdocs[/ ]([A-Za-z0-9_-]+\.md)\b/g)) {
      refs++;
      if (!fs.existsSync(path.join(root, 'docs', m[1]))) missing.push(`${path.relative(root, file)}: docs/${m[1]}`);
    }
  }
  assert.ok(refs > 5, `found only ${refs} references: the pattern is wrong`);
  assert.deepEqual(missing, []);
});
