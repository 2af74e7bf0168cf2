/**
 * forkd-keeper: owns the QEMU processes of one daemon. QEMU runs as the keeper's child under
 * pdeathsig, so if the keeper dies its VMs die. If the daemon dies (even by SIGKILL) the keeper
 * keeps the VMs for a grace period so a restarted daemon can re-adopt them; when the grace
 * period ends with no daemon attached, it kills them, removes their run dirs and exits.
 *   node main.js --socket PATH --grace-ms N
 */
import net from 'node:net';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { LineFramer, readLines } from '../util/line-framer.js';
import { socketAnswers } from '../util/unix-socket.js';
import { spawnQemu, CHILD_NETNS_NAME, type QemuProcess } from '../qemu/start.js';
import { deleteNetns } from '../network/index.js';
import { which } from '../qemu/which.js';
import { procStartTime } from '../runtime/proc.js';
import { ensureRunDir, removeEmptyCgroupRoots, removeVmDir, runtimeDir, VM_DIR_PREFIX } from '../runtime/dir.js';
import { KEEPER_PROTOCOL, KeeperRequest, MAX_KEEPER_LINE, type KeeperRequestT } from './protocol.js';

const FORWARDED_STDERR_CAP = 64 * 1024;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const socketPath = arg('--socket');
const graceMs = Number(arg('--grace-ms') ?? 60_000);
if (!socketPath || !Number.isFinite(graceMs) || graceMs < 0) {
  process.stderr.write('usage: keeper --socket PATH --grace-ms N\n');
  process.exit(2);
}
process.title = 'forkd-keeper';
// Everything the keeper creates (its socket, run-dir leftovers) is its user's alone.
process.umask(0o077);
const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} forkd-keeper[${process.pid}]: ${msg}\n`);

interface Held {
  proc: QemuProcess;
  runDir: string;
  /** The child's network namespace: removed with its run dir (its veth and rules go with it). */
  netns?: string;
}

/** Cgroups of VMs the keeper removed: their daemon's root cgroup is removed (if empty) when the keeper ends. */
const removedCgroups = new Set<string>();

/** What is left of a VM nobody will come for: its run dir (with its cgroups and overlay) and its namespace. */
async function removeLeftovers(h: Held): Promise<void> {
  if (ownedRunDir(h.runDir)) for (const c of await removeVmDir(h.runDir)) removedCgroups.add(c);
  if (h.netns) await deleteNetns(h.netns).catch((e: Error) => log(`could not remove namespace ${h.netns}: ${e.message}`));
}
const vms = new Map<number, Held>();
let client: net.Socket | null = null;
let graceTimer: NodeJS.Timeout | null = null;
let stopping = false;
const setpriv = await which('setpriv');

function send(sock: net.Socket | null, msg: unknown): void {
  if (sock && !sock.destroyed) sock.write(`${JSON.stringify(msg)}\n`);
}

/** A run dir the keeper may remove: a direct vm-<hex> child of the run dir, nothing else. */
function ownedRunDir(dir: string): boolean {
  return path.dirname(dir) === runtimeDir() && new RegExp(`^${VM_DIR_PREFIX}[0-9a-f]{16}$`).test(path.basename(dir));
}

async function killAll(): Promise<void> {
  const held = [...vms.values()];
  for (const h of held) h.proc.kill('SIGKILL');
  await Promise.all(held.map((h) => h.proc.exited));
  await Promise.all(held.map((h) => removeLeftovers(h)));
}

async function stop(reason: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`stopping: ${reason} (${vms.size} VMs)`);
  await killAll();
  // No daemon is attached any more: the root cgroup of the VMs it removed goes too, if now empty.
  await removeEmptyCgroupRoots([...removedCgroups]);
  server.close();
  await fs.rm(socketPath!, { force: true });
  await fs.rm(socketPath!.replace(/\.sock$/, '.log'), { force: true }); // a clean exit leaves nothing behind
  process.exit(0);
}

function armGrace(): void {
  if (graceTimer) clearTimeout(graceTimer);
  graceTimer = setTimeout(() => void stop(`no daemon attached for ${graceMs} ms`), graceMs);
}

async function handle(sock: net.Socket, req: KeeperRequestT): Promise<void> {
  if (req.op === 'hello') {
    if (req.version !== KEEPER_PROTOCOL) {
      send(sock, { id: req.id, ok: false, error: { code: 'version', message: `keeper speaks protocol ${KEEPER_PROTOCOL}, client ${req.version}` } });
      return;
    }
    const vmsList = [...vms.entries()].filter(([, h]) => !h.proc.hasExited).map(([pid, h]) => ({ pid, run_dir: h.runDir, args: h.proc.args, ...(h.netns ? { netns: h.netns } : {}) }));
    send(sock, { id: req.id, ok: true, keeper_pid: process.pid, keeper_starttime: (await procStartTime(process.pid)) ?? 0, vms: vmsList });
    return;
  }
  if (req.op === 'shutdown') {
    await killAll();
    send(sock, { id: req.id, ok: true });
    await new Promise<void>((r) => sock.end(() => r()));
    await stop('shutdown requested');
    return;
  }
  // launch: only a QEMU binary, only in a forkd VM dir.
  if (!/^qemu-system-[a-z0-9_]+$/.test(path.basename(req.qemu_path)) || !path.isAbsolute(req.qemu_path) || !ownedRunDir(req.cwd) || (req.netns !== undefined && !CHILD_NETNS_NAME.test(req.netns))) {
    send(sock, { id: req.id, ok: false, error: { code: 'FORKD_E_INVALID_ARGUMENT', message: 'keeper launches only qemu-system-* in a forkd VM directory' } });
    return;
  }
  if (!setpriv) {
    send(sock, { id: req.id, ok: false, error: { code: 'FORKD_E_TOOL_MISSING', message: 'setpriv not found: apt-get install util-linux' } });
    return;
  }
  try {
    let forwarded = 0;
    const pid = { value: 0 }; // known once spawned; output before that is not forwarded
    // The attached daemon gets a bounded copy of QEMU's output (it keeps its own tail).
    const proc = await spawnQemu({ qemuPath: req.qemu_path, args: req.args, cwd: req.cwd, stderrCapBytes: req.stderr_cap, ...(req.confine ? { confine: req.confine } : {}), ...(req.jail ? { jail: req.jail } : {}), ...(req.netns ? { netns: req.netns } : {}) }, (d) => {
      if (forwarded >= FORWARDED_STDERR_CAP || !pid.value) return;
      forwarded += d.length;
      send(client, { ev: 'stderr', pid: pid.value, data: d.toString('utf8') });
    });
    pid.value = proc.pid;
    const held: Held = { proc, runDir: req.cwd, ...(req.netns ? { netns: req.netns } : {}) };
    vms.set(proc.pid, held);
    void proc.exited.then(async (ex) => {
      vms.delete(proc.pid);
      if (client) send(client, { ev: 'exit', pid: proc.pid, code: ex.code, signal: ex.signal });
      else if (ownedRunDir(held.runDir)) await removeLeftovers(held); // nobody will come for it
    });
    send(sock, { id: req.id, ok: true, pid: proc.pid });
  } catch (e) {
    send(sock, { id: req.id, ok: false, error: { code: 'FORKD_E_VM_START_FAILED', message: (e as Error).message } });
  }
}

const server = net.createServer((sock) => {
  if (client) {
    const framer = new LineFramer(MAX_KEEPER_LINE);
    sock.once('data', (d: Buffer) => {
      let id = 0;
      try {
        id = (JSON.parse(framer.push(d)[0] ?? '{}') as { id?: number }).id ?? 0;
      } catch {
        /* answer anyway */
      }
      send(sock, { id, ok: false, error: { code: 'busy', message: `another forkd daemon is attached to this keeper (keeper pid ${process.pid})` } });
      sock.end();
    });
    sock.on('error', () => undefined);
    return;
  }
  client = sock;
  if (graceTimer) clearTimeout(graceTimer);
  graceTimer = null;
  readLines(sock, MAX_KEEPER_LINE, (line) => {
    let parsed;
    try {
      parsed = KeeperRequest.safeParse(JSON.parse(line));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      send(sock, { id: 0, ok: false, error: { code: 'FORKD_E_INVALID_ARGUMENT', message: 'bad keeper request' } });
      return;
    }
    void handle(sock, parsed.data);
  });
  sock.on('error', () => undefined);
  sock.on('close', () => {
    if (client !== sock) return;
    client = null;
    if (!stopping) {
      log(`daemon detached; holding ${vms.size} VMs for ${graceMs} ms`);
      armGrace();
    }
  });
});

if (path.dirname(socketPath) === runtimeDir()) await ensureRunDir(); // FORKD_E_RUN_DIR_UNSAFE: exit before trusting it
// Another keeper already serving this socket wins; a stale socket file is replaced.
if (await socketAnswers(socketPath)) {
  log('another keeper serves this socket; exiting');
  process.exit(0);
}
if (path.dirname(socketPath) !== runtimeDir()) await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o700 });
await fs.rm(socketPath, { force: true });
server.listen(socketPath, () => {
  // listen, then chmod (the process umask is 077 already; no umask change around an async call)
  void fs.chmod(socketPath, 0o600).catch(() => undefined);
  log(`listening on ${socketPath} (grace ${graceMs} ms)`);
  armGrace(); // until the first daemon attaches
});
server.on('error', (e) => {
  log(`server error: ${e.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGHUP', () => undefined);
