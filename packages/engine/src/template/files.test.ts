/**
 * The template file store, hostile uploads: a name that is not a digest never reaches a path join,
 * bytes that do not hash to their name are not kept, a stream past the size limit stops with
 * FORKD_E_PAYLOAD_TOO_LARGE and leaves nothing, and a damaged stored file never reaches an image.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForkdError, LIMITS } from '@forkd/protocol';
import { homeLayout } from '../home/paths.js';
import { hasTemplateFile, putTemplateFile, readTemplateFile, templateFileBytes, templateFilesDir } from './files.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-tplfiles-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const layout = homeLayout(root);
const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');
const is = (code: string) => (e: unknown) => e instanceof ForkdError && e.code === code;
const stored = () => (fs.existsSync(templateFilesDir(layout)) ? fs.readdirSync(templateFilesDir(layout)) : []);

test('a file is stored under its digest; storing it again says it existed', async () => {
  const r = await putTemplateFile(layout, sha('hello'), Buffer.from('hello'));
  assert.deepEqual(r, { sha256: sha('hello'), bytes: 5, existed: false });
  assert.equal((await putTemplateFile(layout, sha('hello'), Buffer.from('hello'))).existed, true);
  assert.equal((await readTemplateFile(layout, sha('hello'))).toString(), 'hello');
  assert.equal(await templateFileBytes(layout, sha('hello')), 5);
  assert.equal(await templateFileBytes(layout, sha('absent')), null);
});

test('names that are not digests are refused before any path is made', async () => {
  for (const bad of ['../../etc/passwd', `${sha('x')}/../x`, sha('x').toUpperCase(), '', 'a'.repeat(63)]) {
    await assert.rejects(putTemplateFile(layout, bad, Buffer.from('x')), is('FORKD_E_INVALID_ARGUMENT'), bad);
    await assert.rejects(hasTemplateFile(layout, bad), is('FORKD_E_INVALID_ARGUMENT'), bad);
  }
  assert.deepEqual(stored().filter((n) => n !== sha('hello')), []);
});

test('bytes that do not hash to the claimed digest are not kept', async () => {
  await assert.rejects(putTemplateFile(layout, sha('claimed'), Buffer.from('other')), is('FORKD_E_INVALID_ARGUMENT'));
  assert.equal(await hasTemplateFile(layout, sha('claimed')), false);
  assert.deepEqual(stored().filter((n) => n !== sha('hello')), [], 'no staging file either');
});

test('a stream past the size limit stops there and leaves nothing', async () => {
  const chunk = Buffer.alloc(16 * 1024 * 1024, 1);
  let sent = 0;
  async function* endless() {
    while (sent <= LIMITS.templates.maxCopyFileBytes + chunk.length) {
      sent += chunk.length;
      yield chunk;
    }
  }
  await assert.rejects(putTemplateFile(layout, sha('big'), endless()), is('FORKD_E_PAYLOAD_TOO_LARGE'));
  assert.ok(sent <= LIMITS.templates.maxCopyFileBytes + chunk.length, 'reading stopped at the limit');
  assert.deepEqual(stored().filter((n) => n !== sha('hello')), []);
});

test('a damaged stored file is refused, not copied into an image', async () => {
  const d = sha('intact');
  await putTemplateFile(layout, d, Buffer.from('intact'));
  const f = path.join(templateFilesDir(layout), d);
  fs.chmodSync(f, 0o600);
  fs.writeFileSync(f, 'tampered');
  await assert.rejects(readTemplateFile(layout, d), is('FORKD_E_TEMPLATE_FILE_MISSING'));
  await assert.rejects(readTemplateFile(layout, sha('never')), is('FORKD_E_TEMPLATE_FILE_MISSING'));
});
