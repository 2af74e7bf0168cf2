/** Everything the methods share: state, the persistent interpreters, helpers, processes. */
import type { BrowserRepl } from './browser-repl.js';
import type { JsRepl } from './js-repl.js';
import type { ProcessTable } from './process-table.js';
import type { PythonRepl } from './python-repl.js';
import type { AgentState } from './state.js';
import type { SpawnHelper } from './spawn-helper.js';
import type { SysHelper } from './sys-helper.js';
import type { NativeReseed } from './native-reseed.js';

export interface Runtime {
  state: AgentState;
  js: JsRepl;
  python: PythonRepl;
  /** Playwright over CDP to a recipe's Chromium; connected by the warm-up when the recipe asks. */
  browser: BrowserRepl;
  sys: SysHelper;
  /** Starts commands without forking the agent; null = Node's spawn (tests outside an image). */
  spawner: SpawnHelper | null;
  procs: ProcessTable;
  /** Reseeds this process's OpenSSL and libc generators after a restore. */
  native: NativeReseed;
  /** Test mode: never touch the clock or the kernel RNG. */
  noSystem: boolean;
}
