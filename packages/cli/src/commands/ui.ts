/**
 * `forkd ui`: opens the web view of the tree. The bearer token stays with the CLI: it asks the daemon
 * for a one-time login code and prints (and opens) an address that carries only the code, in its
 * fragment; the page trades it by POST for an HttpOnly cookie.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { Controller } from '@forkd/sdk';
import { ForkdError } from '@forkd/protocol';
import type { CliContext } from '../client.js';
import { printJson } from '../output.js';

/** The program that opens a URL in the desktop's browser, when there is a desktop. */
export function browserOpener(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string | null {
  if (platform === 'darwin') return 'open';
  if (platform === 'linux' && (env.DISPLAY || env.WAYLAND_DISPLAY)) return 'xdg-open';
  return null;
}

export async function uiCmd(c: Controller, o: { json?: boolean; open?: boolean }): Promise<number> {
  const base = c.endpoint.base;
  if (!base) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'the web view needs a daemon a browser can reach over TCP, and this one listens on a Unix socket only: run `forkd serve --bind 127.0.0.1:8700 --token-file FILE`, then `forkd --daemon-url http://127.0.0.1:8700 --daemon-token-file FILE ui`');
  }
  const code = await c.call('createUiCode');
  const url = new URL(code.login_path, base).toString();
  const opener = o.open === false ? null : browserOpener();
  let opened = false;
  if (opener) {
    try {
      // The URL goes to the opener as an argument of our own process (never through a shell).
      const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
      child.on('error', () => undefined);
      child.unref();
      opened = true;
    } catch {
      opened = false;
    }
  }
  const expiresInSecs = Math.max(0, Math.round((code.expires_at_unix_ms - Date.now()) / 1000));
  if (o.json) printJson({ url, expires_at_unix_ms: code.expires_at_unix_ms, opened });
  else process.stdout.write(`${opened ? 'Opening' : 'Open'} ${url}\n(one use, within ${expiresInSecs} s; the page then keeps a session cookie)\n`);
  return 0;
}

export function registerUiCommand(program: Command, { run, client }: CliContext): void {
  program.command('ui').description('open the web view of snapshots, branches and sandboxes (prints a one-time login address)')
    .option('--no-open', 'only print the address, do not start a browser')
    .option('--json', 'JSON output')
    .action(run(async (o: { json?: boolean; open?: boolean }) => uiCmd(await client(), o)));
}
