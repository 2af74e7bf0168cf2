/**
 * Recipe services against the real agent on the host (Node's spawn and forkd-spawn): each ready
 * check kind passes on a real process, and each failure (never ready, exits at once, cannot start)
 * becomes its stable code with the service's own output, leaving no process behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForkdError, ServicesStartParams, type ServiceSpecT } from '@forkd/protocol';
import { AgentClient } from './client.js';
import { startTestAgent, type TestAgent } from './test-agent.js';
import { startServices } from '../vm/services.js';

const SPAWN_HELPER_SOURCE = fileURLToPath(new URL('../../../agent/src/spawn-helper.c', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<ForkdError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ForkdError, `expected a ForkdError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, got success`);
}

const node = process.execPath;
const httpServer = (port: number) => [node, '-e', `require('http').createServer((q, s) => s.end('hi')).listen(${port}, '127.0.0.1', () => console.log('listening ${port}'))`];

for (const mode of ['node-spawn', 'forkd-spawn'] as const) {
  describe(`services (${mode})`, () => {
    let agent: TestAgent;
    let c: AgentClient;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-services-test-'));
    const started: number[] = [];
    before(async () => {
      let extraArgs: string[] = [];
      if (mode === 'forkd-spawn') {
        const out = path.join(dir, 'forkd-spawn');
        execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', out, SPAWN_HELPER_SOURCE]);
        extraArgs = ['--spawn-helper', out];
      }
      agent = await startTestAgent({ extraArgs });
      c = await AgentClient.connect(agent.socketPath, { connectTimeoutMs: 10_000 });
    });
    after(async () => {
      c?.close();
      await agent?.stop();
      for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('starts services in order, each ready by its check (port, url, file, cmd), and lists them running', async () => {
      const [p1, p2] = [await freePort(), await freePort()];
      const flag = path.join(dir, `ready-${mode}`);
      const specs: ServiceSpecT[] = [
        { name: 'by-port', start: httpServer(p1), ready: { port: p1 }, timeout_secs: 20 },
        { name: 'by-url', start: httpServer(p2), ready: { url: `http://127.0.0.1:${p2}/` }, timeout_secs: 20 },
        // Shell form; the file appears only after a delay, so the check has to poll.
        { name: 'by-file', start: `sleep 0.5; touch ${flag}; exec sleep 600`, ready: { file: flag }, timeout_secs: 20 },
        { name: 'by-cmd', start: ['sleep', '600'], env: { WANT: 'yes' }, ready: { cmd: `test "$WANT" = yes && test -e ${flag}` }, timeout_secs: 20 },
      ];
      const st = await startServices(c, specs);
      assert.deepEqual(st.map((s) => [s.name, s.state]), specs.map((s) => [s.name, 'ready']));
      started.push(...st.map((s) => s.pid!));
      assert.ok(st[2]!.ready_ms >= 400, `file check waited for the file (${st[2]!.ready_ms} ms)`);
      const res = await fetch(`http://127.0.0.1:${p2}/`);
      assert.equal(await res.text(), 'hi');
      const list = await c.servicesList();
      assert.deepEqual(list.services.map((s) => [s.name, s.running]), specs.map((s) => [s.name, true]));
      for (const s of st) assert.ok(alive(s.pid), `${s.name} pid ${s.pid} alive`);
    });

    it('a service that never becomes ready: FORKD_E_SERVICE_NOT_READY with its own output, and it is killed', async () => {
      const port = await freePort();
      const err = await rejectsWith(startServices(c, [{ name: 'slowpoke', start: 'echo "starting slowpoke on stdout"; echo "config warning on stderr" >&2; exec sleep 600', ready: { port }, timeout_secs: 2 }]), 'FORKD_E_SERVICE_NOT_READY');
      assert.match(err.message, /slowpoke was not ready within 2 s/);
      assert.match(err.message, /starting slowpoke on stdout/);
      assert.match(err.message, /config warning on stderr/);
      assert.match(String(err.details?.reason), /ECONNREFUSED/);
      const pid = err.details?.pid as number;
      assert.ok(pid > 0);
      assert.equal(alive(pid), false, 'the service was killed');
    });

    it('a start command that exits at once: FORKD_E_SERVICE_EXITED with its exit code and output, reported without waiting out the timeout', async () => {
      const t0 = Date.now();
      const err = await rejectsWith(startServices(c, [{ name: 'crasher', start: 'echo "FATAL: could not open config" >&2; exit 3', ready: { port: 1 }, timeout_secs: 60 }]), 'FORKD_E_SERVICE_EXITED');
      assert.ok(Date.now() - t0 < 10_000, 'an exit is reported at once');
      assert.equal(err.details?.exit_code, 3);
      assert.match(err.message, /crasher exited with code 3/);
      assert.match(err.message, /FATAL: could not open config/);
    });

    it('a start command that cannot run, and an unknown user: FORKD_E_SERVICE_EXITED saying why', async () => {
      const err = await rejectsWith(startServices(c, [{ name: 'missing', start: ['/no/such/binary'], ready: { port: 1 }, timeout_secs: 5 }]), 'FORKD_E_SERVICE_EXITED');
      assert.match(err.message, /missing could not start: .*ENOENT/);
      const err2 = await rejectsWith(startServices(c, [{ name: 'ghost', start: ['sleep', '1'], user: 'no-such-user', ready: { port: 1 }, timeout_secs: 5 }]), 'FORKD_E_SERVICE_EXITED');
      assert.match(err2.message, /no user "no-such-user"/);
    });

    it('runs a service as another account (setpriv), with its HOME and USER', async () => {
      // The service reports itself in a file it writes (its piped output may still be in flight when the
      // ready check passes); the ready check is that file.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-nobody-'));
      fs.chmodSync(dir, 0o777);
      const report = path.join(dir, 'who');
      try {
        const st = await startServices(c, [{ name: 'as-nobody', user: 'nobody', start: `echo "uid=$(id -u) user=$USER home=$HOME" > ${report}.tmp && mv ${report}.tmp ${report}; exec sleep 600`, ready: { file: report }, timeout_secs: 20 }]);
        started.push(st[0]!.pid!);
        const nobody = execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim();
        const home = execFileSync('sh', ['-c', 'getent passwd nobody | cut -d: -f6'], { encoding: 'utf8' }).trim();
        assert.equal(fs.readFileSync(report, 'utf8').trim(), `uid=${nobody} user=nobody home=${home}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('all or nothing: when a later service fails, the earlier ones are stopped', async () => {
      const port = await freePort();
      const err = await rejectsWith(startServices(c, [
        { name: 'good', start: httpServer(port), ready: { port }, timeout_secs: 20 },
        { name: 'bad', start: 'exit 7', ready: { port: 1 }, timeout_secs: 20 },
      ]), 'FORKD_E_SERVICE_EXITED');
      assert.equal(err.details?.service, 'bad');
      await new Promise((r) => setTimeout(r, 300));
      await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'the good service was stopped');
      const list = await c.servicesList();
      assert.ok(!list.services.some((s) => s.name === 'good' || s.name === 'bad'));
    });
  });
}

describe('service specs are validated by the protocol schema', () => {
  const ok = { name: 'db', start: ['postgres'], ready: { port: 5432 }, timeout_secs: 30 };
  for (const [what, bad] of [
    ['two ready checks', { ...ok, ready: { port: 5432, file: '/x' } }],
    ['no ready check', { ...ok, ready: {} }],
    ['a port out of range', { ...ok, ready: { port: 70000 } }],
    ['a relative ready file', { ...ok, ready: { file: 'x' } }],
    ['a non-http url', { ...ok, ready: { url: 'file:///etc/passwd' } }],
    ['a name with a slash', { ...ok, name: '../db' }],
    ['a zero timeout', { ...ok, timeout_secs: 0 }],
    ['a huge timeout', { ...ok, timeout_secs: 10 ** 9 }],
    ['an empty argv', { ...ok, start: [] }],
    ['a bad user', { ...ok, user: 'root;rm' }],
    ['an unknown field', { ...ok, restart: true }],
  ] as const) {
    it(`refuses ${what}`, () => assert.equal(ServicesStartParams.safeParse({ services: [bad] }).success, false));
  }
  it('refuses duplicate names and accepts a valid list', () => {
    assert.equal(ServicesStartParams.safeParse({ services: [ok, ok] }).success, false);
    assert.equal(ServicesStartParams.safeParse({ services: [ok, { ...ok, name: 'db2' }] }).success, true);
  });
});
