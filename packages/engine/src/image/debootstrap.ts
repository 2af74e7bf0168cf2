import { spawn } from 'node:child_process';
import { ForkdError } from '@forkd/protocol';
import type { ProgressFn } from '../progress.js';

const MIRROR = process.env.FORKD_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

/**
 * Runs debootstrap (minbase) into dir, reporting its I: lines as progress.
 * debootstrap prints "I: Retrieving X", "I: Unpacking X", "I: Configuring X": we count them
 * against the number of packages it announced to give a rough fraction.
 */
export async function debootstrap(opts: { dir: string; suite: string; packages: string[]; cacheDir: string; onProgress: ProgressFn }): Promise<void> {
  const args = ['--variant=minbase', `--cache-dir=${opts.cacheDir}`];
  if (opts.packages.length > 0) args.push(`--include=${opts.packages.join(',')}`);
  args.push(opts.suite, opts.dir, MIRROR);
  const stderrTail: string[] = [];
  let steps = 0;
  const expected = 900; // minbase + node + python: ~150 packages, each retrieved, validated, extracted, unpacked, configured
  await new Promise<void>((resolve, reject) => {
    const child = spawn('debootstrap', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const onLine = (line: string) => {
      stderrTail.push(line);
      if (stderrTail.length > 40) stderrTail.shift();
      const m = /^I: (Retrieving|Validating|Unpacking|Configuring|Extracting|Installing|Base system installed|Resolving|Checking|Found)\s*(.*)$/.exec(line);
      if (m) {
        steps++;
        opts.onProgress({ phase: 'debootstrap', message: `${m[1]} ${m[2] ?? ''}`.trim(), fraction: Math.min(0.99, steps / expected) });
      }
    };
    let buf = '';
    const feed = (d: Buffer) => {
      buf += d.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
    child.stdout.on('data', feed);
    child.stderr.on('data', feed);
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT'
        ? new ForkdError('FORKD_E_TOOL_MISSING', 'debootstrap is not installed (apt-get install debootstrap)', { tool: 'debootstrap' })
        : new ForkdError('FORKD_E_TOOL_FAILED', `debootstrap: ${e.message}`, { tool: 'debootstrap' }));
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new ForkdError('FORKD_E_IMAGE_BUILD_FAILED', `debootstrap exited with ${code}: ${stderrTail.slice(-8).join(' | ')}`, { tool: 'debootstrap', exit_code: code }));
    });
  });
}
