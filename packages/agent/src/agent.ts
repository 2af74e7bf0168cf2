/** Wires the runtime, the method table and the frame server together. */
import fs from 'node:fs';
import path from 'node:path';
import type { MethodTable } from './handler.js';
import { JsRepl } from './js-repl.js';
import { makeEval } from './methods/eval.js';
import { makeRunCode } from './methods/run-code.js';
import { makeExec } from './methods/exec.js';
import { fileMethods } from './methods/files.js';
import { makeProcMethods } from './methods/procs.js';
import { makeServiceMethods } from './methods/services.js';
import { makeSystemMethods } from './methods/system.js';
import { makeWarmup } from './methods/warmup.js';
import { ProcessTable } from './process-table.js';
import { PythonRepl } from './python-repl.js';
import type { Runtime } from './runtime.js';
import { AgentServer } from './server.js';
import { AgentState } from './state.js';
import { SpawnHelper } from './spawn-helper.js';
import { SysHelper } from './sys-helper.js';
import { NativeReseed } from './native-reseed.js';
import { GuestForkBroker } from './guest-fork.js';
import { makeVaryMethods } from './methods/vary.js';
import { LIMITS } from '@forkd/protocol';

export interface AgentOptions {
  /** Directory holding pyrepl.py, forkd-sys and forkd-spawn (next to the running agent file). */
  helpersDir: string;
  /** forkd-spawn to start commands with; default: helpersDir's, except in test mode (--no-system). */
  spawnHelper?: string;
  noSystem: boolean;
  /** python3 executable; undefined = search PATH. */
  python?: string | null;
  /** The guest library's socket (forkd.fork()); default LIMITS.guestFork.socketPath, except in test mode; null: none. */
  guestForkSocket?: string | null;
}

export interface Agent {
  server: AgentServer;
  runtime: Runtime;
  /** Starts listening for the guest library (when a socket path is configured). */
  startGuestFork(): Promise<void>;
  shutdown(): void;
}

export function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH || '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

export function createAgent(o: AgentOptions): Agent {
  const runtime: Runtime = {
    state: new AgentState(),
    js: new JsRepl(),
    python: new PythonRepl(o.python === undefined ? findExecutable('python3') : o.python, path.join(o.helpersDir, 'pyrepl.py')),
    sys: new SysHelper(path.join(o.helpersDir, 'forkd-sys')),
    procs: new ProcessTable(),
    native: new NativeReseed(),
    spawner: null,
    noSystem: o.noSystem,
  };
  const spawnHelper = o.spawnHelper ?? (o.noSystem ? undefined : path.join(o.helpersDir, 'forkd-spawn'));
  if (spawnHelper) {
    const spawner = new SpawnHelper(spawnHelper);
    if (spawner.start()) runtime.spawner = spawner;
  }
  // Test mode never touches the system, so it needs no helper (none is built outside images).
  if (!o.noSystem) {
    runtime.sys.start();
    runtime.native.load(o.helpersDir);
    if (runtime.native.loadError) process.stderr.write(`forkd-agent: native reseed unavailable: ${runtime.native.loadError}\n`);
  }
  const forkSocket = o.guestForkSocket !== undefined ? o.guestForkSocket : o.noSystem ? null : LIMITS.guestFork.socketPath;
  const broker = new GuestForkBroker(forkSocket ?? undefined);
  let server: AgentServer | null = null;
  const { stopAll: stopServices, ...serviceMethods } = makeServiceMethods(runtime.spawner);
  const table: MethodTable = {
    ...makeSystemMethods(runtime, () => broker.onRestore()),
    warmup: makeWarmup(runtime, () => (method, params, ctx) => server!.invoke(method, params, ctx)),
    exec: makeExec(runtime.procs, runtime.spawner),
    ...makeProcMethods(runtime.procs),
    ...fileMethods,
    eval: makeEval(runtime),
    run_code: makeRunCode(runtime),
    ...serviceMethods,
    ...makeVaryMethods(runtime, broker),
  };
  server = new AgentServer(table);
  return {
    server,
    runtime,
    startGuestFork: () => (forkSocket ? broker.start() : Promise.resolve()),
    shutdown() {
      broker.stop();
      runtime.procs.killAll();
      stopServices();
      runtime.python.stop();
      runtime.sys.stop();
      runtime.spawner?.stop();
    },
  };
}
