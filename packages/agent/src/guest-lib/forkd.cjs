'use strict';
/**
 * forkd guest library for Node: fork this VM from inside, at any point of any program.
 *
 *   const forkd = require('forkd');
 *   const r = await forkd.fork(3, { vary: { t: [1, 2, 3] } });
 *   if (r.role === 'parent') console.log('children', r.children);
 *   else console.log('child', r.index, r.values);
 *
 * Resolves once in the original ({role: 'parent', children, pause_ms, fork_ms}) and once in each
 * child ({role: 'child', index, values, seed}), like fork(2): the whole VM continues in every branch.
 * In a child, Math.random is replaced by a generator seeded from the child's seed (V8's own state
 * was cloned). Allowed only in sandboxes created with allow_guest_fork; otherwise, or beyond its
 * limits, it rejects with an Error whose .code is the FORKD_E_* code. Installed by forkd in every image.
 */
const net = require('node:net');
const crypto = require('node:crypto');

const SOCKET_PATH = '/run/forkd/fork.sock';
const DEFAULT_TIMEOUT_MS = 600000;

class ForkdError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'ForkdError';
    this.code = code;
  }
}

function fork(k, opts = {}) {
  if (!Number.isInteger(k) || k < 1) return Promise.reject(new ForkdError('FORKD_E_INVALID_ARGUMENT', 'k must be a positive integer'));
  const request = { op: 'fork', count: k };
  if (opts.vary !== undefined && opts.vary !== null) request.vary = opts.vary;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const socketPath = module.exports.SOCKET_PATH;
    const sock = net.connect(socketPath);
    let buf = '';
    let settled = false;
    const done = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => done(new ForkdError('FORKD_E_TIMEOUT', `no answer from the host within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(request)}\n`));
    sock.on('error', (e) => done(new ForkdError('FORKD_E_AGENT_UNAVAILABLE', `cannot reach the forkd agent at ${socketPath}: ${e.message}`)));
    sock.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let answer;
      try {
        answer = JSON.parse(buf.slice(0, nl));
      } catch (e) {
        done(new ForkdError('FORKD_E_AGENT_PROTOCOL', `unreadable answer: ${e.message}`));
        return;
      }
      if (!answer.ok) {
        done(new ForkdError(answer.code || 'FORKD_E_INTERNAL', answer.message || 'guest fork failed'));
        return;
      }
      delete answer.ok;
      if (answer.role === 'child') Math.random = seededRandom(answer.seed);
      done(null, answer);
    });
    sock.on('end', () => done(new ForkdError('FORKD_E_AGENT_UNAVAILABLE', 'the agent closed the connection without an answer')));
  });
}

/** xoshiro128** from the child's seed (as the agent's own generator). */
function seededRandom(seed) {
  const h = crypto.createHash('sha256').update(`forkd-seed:${seed}:lib`).digest();
  let a = h.readUInt32LE(0) >>> 0, b = h.readUInt32LE(4) >>> 0, c = h.readUInt32LE(8) >>> 0, d = h.readUInt32LE(12) >>> 0;
  if ((a | b | c | d) === 0) a = 0x9e3779b9;
  const next = () => {
    const t = b << 9;
    let r = Math.imul(b, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t;
    d = (d << 11) | (d >>> 21);
    return r >>> 0;
  };
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

module.exports = { fork, ForkdError, SOCKET_PATH };
