/**
 * forkd-nsconnect NETNS-PATH ADDR PORT: enters a network namespace, connects to ADDR:PORT there and
 * relays stdin/stdout to the connection, half-closes included. Node cannot setns, so each
 * forwarded connection runs one of these (~2 ms to start): a tiny C program compiled once per host
 * with the system's gcc (as the THP wrapper is) and cached under <home>/cache/bin.
 */
import { hostHelper } from '../../qemu/host-helpers.js';

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


/** The helper's path, compiled on first use (qemu/host-helpers: cached by source hash). */
export function nsconnectBinary(): Promise<string> {
  return hostHelper({ name: 'forkd-nsconnect', source: NSCONNECT_SOURCE });
}
