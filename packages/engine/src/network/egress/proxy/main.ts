/**
 * The egress proxy process: `main --control SOCK --config JSON`. Started by EgressService inside the
 * uplink namespace; prints "ready" once it listens; exits on SIGTERM (and with its parent: pdeathsig).
 */
import net from 'node:net';
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LineFramer } from '../../../util/line-framer.js';
import type { EgressConfig } from '../config.js';
import { EgressProxy } from './proxy.js';
import { MAX_CONTROL_LINE_BYTES, type ControlReply, type ControlRequest } from './control.js';

const { values } = parseArgs({ options: { control: { type: 'string' }, config: { type: 'string' } } });
if (!values.control || !values.config) {
  process.stderr.write('usage: main --control SOCK --config JSON\n');
  process.exit(2);
}
const config = JSON.parse(values.config) as EgressConfig;
const proxy = new EgressProxy(config);

function handle(req: ControlRequest): ControlReply {
  switch (req.op) {
    case 'set': proxy.setPolicy(req.hostAddr, req.policy); return { ok: true };
    case 'remove': return { ok: true, removed: proxy.removePolicy(req.hostAddr) };
    case 'state': return { ok: true, children: proxy.children(), stats: { ...proxy.stats } };
    default: return { ok: false, error: 'unknown op' };
  }
}

const control = net.createServer((s) => {
  const framer = new LineFramer(MAX_CONTROL_LINE_BYTES);
  s.on('error', () => undefined);
  s.on('data', (chunk: Buffer) => {
    let lines: string[];
    try {
      lines = framer.push(chunk);
    } catch {
      return void s.destroy();
    }
    for (const line of lines) {
      let reply: ControlReply;
      try {
        reply = handle(JSON.parse(line) as ControlRequest);
      } catch (e) {
        reply = { ok: false, error: (e as Error).message };
      }
      s.write(`${JSON.stringify(reply)}\n`);
    }
  });
});

process.umask(0o077); // the control socket is the daemon's alone
rmSync(values.control, { force: true });
await proxy.listen();
await new Promise<void>((resolve) => control.listen(values.control, resolve));
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  control.close();
  rmSync(values.control!, { force: true });
  void proxy.close().then(() => process.exit(0));
});
