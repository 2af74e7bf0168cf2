import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseImageDefaults, resolveUser } from './image-config.js';

const etc = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-etc-'));
fs.writeFileSync(path.join(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n');
fs.writeFileSync(path.join(etc, 'group'), 'root:x:0:\nstaff:x:50:\n');

test("an OCI image's User resolves by name, uid, name:group and uid:gid; root means no change", () => {
  assert.deepEqual(resolveUser('app', etc), { uid: 1000, gid: 1001, env: { HOME: '/home/app', USER: 'app', LOGNAME: 'app' } });
  assert.equal(resolveUser('app:staff', etc)?.gid, 50);
  assert.deepEqual(resolveUser('4242:77', etc), { uid: 4242, gid: 77, env: { HOME: '/', USER: '4242', LOGNAME: '4242' } });
  assert.equal(resolveUser('root', etc), undefined);
  assert.throws(() => resolveUser('nobody-here', etc), /not in its \/etc\/passwd/);
});

test('image defaults keep valid env names and absolute workdirs only', () => {
  const d = parseImageDefaults(JSON.stringify({ env: { A: '1', 'bad-name': 'x', B: 2 }, workdir: 'relative', user: null }), etc);
  assert.deepEqual(d, { env: { A: '1' }, workdir: undefined, user: undefined });
});
