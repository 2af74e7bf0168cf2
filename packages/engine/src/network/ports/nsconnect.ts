/**
 * forkd-nsconnect NETNS-PATH ADDR PORT: enters a network namespace, connects to ADDR:PORT there and
 * relays stdin/stdout to the connection, half-closes included. Node cannot setns, so each
 * forwarded connection runs one of these (~2 ms to start): a tiny C program compiled once per host
 * with the system's gcc (as the THP wrapper is) and cached under <home>/cache/bin.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { forkdHome } from '../../home/paths.js';
import { runTool } from '../../qemu/tools.js';
import { which } from '../../qemu/which.js';

export const NSCONNECT_SOURCE = `#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
/* forkd-nsconnect NETNS-PATH ADDR PORT: connect to ADDR:PORT inside the namespace, relay stdio. */
static int pump(int from, int to) {
  char buf[65536];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0) return n < 0 && (errno == EINTR || errno == EAGAIN) ? 1 : 0;
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(to, buf + off, n - off);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    off += w;
  }
  return 1;
}
int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: forkd-nsconnect NETNS-PATH ADDR PORT\\n"); return 2; }
  int ns = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) { perror("forkd-nsconnect: setns"); return 3; }
  close(ns);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3])) };
  if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) { fprintf(stderr, "forkd-nsconnect: bad address\\n"); return 2; }
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("forkd-nsconnect: connect"); return 4; }
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int in_open = 1, out_open = 1;
  while (in_open || out_open) {
    struct pollfd p[2] = { { in_open ? 0 : -1, POLLIN, 0 }, { out_open ? s : -1, POLLIN, 0 } };
    if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; return 5; }
    if (in_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      int r = pump(0, s);
      if (r < 0) return 0;
      if (r == 0) { in_open = 0; shutdown(s, SHUT_WR); }
    }
    if (out_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      int r = pump(s, 1);
      if (r < 0) return 0;
      if (r == 0) { out_open = 0; close(1); }
    }
  }
  return 0;
}
`;

let cached: Promise<string> | null = null;

/** The helper's path, compiled on first use. */
export function nsconnectBinary(): Promise<string> {
  cached ??= build().catch((e: unknown) => {
    cached = null;
    throw e;
  });
  return cached;
}

async function build(): Promise<string> {
  const dir = path.join(forkdHome(), 'cache', 'bin');
  const out = path.join(dir, `forkd-nsconnect-${crypto.createHash('sha256').update(NSCONNECT_SOURCE).digest('hex').slice(0, 12)}`);
  if (await fs.access(out, fs.constants.X_OK).then(() => true, () => false)) return out;
  const gcc = (await which('gcc')) ?? (await which('cc'));
  if (!gcc) throw new ForkdError('FORKD_E_TOOL_MISSING', 'gcc is needed to build forkd-nsconnect (it relays exposed ports into a child\'s namespace): apt-get install gcc libc6-dev', { tool: 'gcc' });
  await fs.mkdir(dir, { recursive: true });
  const tag = crypto.randomBytes(4).toString('hex');
  const src = path.join(dir, `.nsconnect-${tag}.c`);
  const tmp = `${out}.${tag}.tmp`;
  try {
    await fs.writeFile(src, NSCONNECT_SOURCE);
    await runTool(gcc, ['-O2', '-o', tmp, src], { timeoutMs: 60_000 });
    await fs.rename(tmp, out);
    return out;
  } finally {
    await fs.rm(src, { force: true });
    await fs.rm(tmp, { force: true });
  }
}
