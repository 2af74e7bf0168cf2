/*
 * forkd-sys: does what Node cannot (clock_settime, the kernel RNG ioctls). Started by the agent
 * before the snapshot, so restored children pay no exec. Static and tiny on purpose: under TCG a
 * restored child translates every instruction it runs afresh, so the restore path must be short
 * (perl's interpreter cost ~2,300 translated blocks per child; this loop a few dozen).
 * Raw read/write, no stdio. Protocol: one command per line on stdin, one reply per line on stdout:
 *   <id> ping                      -> <id> ok pong
 *   <id> clock <sec> <nsec>        -> <id> ok | <id> err <reason>
 *   <id> entropy <hex>             -> <id> ok | <id> err <reason>   (RNDADDENTROPY + RNDRESEEDCRNG)
 *   <id> restore <sec> <nsec> <hex> -> both in one round trip
 * Build: gcc -static -Os (the image builder does it; see packages/engine/src/image/guest-helpers.ts).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE 8192
#define MAX_ENTROPY 2048

static char line[MAX_LINE + 1];
static char out[256];
static int random_fd = -1;
static struct {
  struct rand_pool_info info;
  unsigned char buf[MAX_ENTROPY];
} pool;

static int append(int at, const char *s) {
  while (*s && at < (int)sizeof(out) - 2) out[at++] = *s++;
  return at;
}

/* "what: errno N" (strerror would pull glibc's locale code into the binary). */
static int append_errno(int at, const char *what, int err) {
  char num[12];
  int i = sizeof(num) - 1;
  num[i] = 0;
  do num[--i] = (char)('0' + err % 10), err /= 10; while (err > 0 && i > 0);
  at = append(at, what);
  at = append(at, ": errno ");
  return append(at, num + i);
}

/* Parses a decimal number (at most 18 digits); advances *p past it and one space. */
static int number(char **p, long long *v) {
  char *s = *p;
  long long n = 0;
  int digits = 0;
  while (*s >= '0' && *s <= '9' && digits < 18) n = n * 10 + (*s++ - '0'), digits++;
  if (digits == 0 || (*s != ' ' && *s != 0)) return -1;
  if (*s == ' ') s++;
  *p = s;
  *v = n;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Returns 0 or an errno-style failure described in out[at..]; *at is advanced. */
static int set_clock(char **p, int *at) {
  long long sec, nsec;
  if (number(p, &sec) || number(p, &nsec) || nsec > 999999999) {
    *at = append(*at, "clock: bad arguments");
    return -1;
  }
  struct timespec ts = { .tv_sec = (time_t)sec, .tv_nsec = (long)nsec };
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) {
    *at = append_errno(*at, "clock_settime", errno);
    return -1;
  }
  return 0;
}

static int add_entropy(char *hex, int *at) {
  int n = 0;
  while (hex[0] && hex[1] && n < MAX_ENTROPY) {
    int hi = hexval(hex[0]), lo = hexval(hex[1]);
    if (hi < 0 || lo < 0) break;
    pool.buf[n++] = (unsigned char)(hi << 4 | lo);
    hex += 2;
  }
  if (*hex != 0 && *hex != ' ') {
    *at = append(*at, "entropy: bad hex");
    return -1;
  }
  if (random_fd < 0) random_fd = open("/dev/random", O_RDONLY | O_CLOEXEC);
  if (random_fd < 0) {
    *at = append_errno(*at, "open /dev/random", errno);
    return -1;
  }
  pool.info.entropy_count = n * 8;
  pool.info.buf_size = n;
  if (ioctl(random_fd, RNDADDENTROPY, &pool) != 0) {
    *at = append_errno(*at, "RNDADDENTROPY", errno);
    return -1;
  }
  if (ioctl(random_fd, RNDRESEEDCRNG) != 0) {
    *at = append_errno(*at, "RNDRESEEDCRNG", errno);
    return -1;
  }
  return 0;
}

/* Handles one line (NUL-terminated, no newline); writes the reply. */
static void handle(char *s) {
  char *id = s;
  char *cmd = strchr(s, ' ');
  if (!cmd) return;
  *cmd++ = 0;
  char *args = strchr(cmd, ' ');
  if (args) *args++ = 0;
  else args = cmd + strlen(cmd);
  int at = append(0, id);
  at = append(at, " ");
  int ok_at = at;
  at = append(at, "err ");
  int failed;
  if (strcmp(cmd, "ping") == 0) {
    at = append(ok_at, "ok pong");
    failed = 0;
  } else if (strcmp(cmd, "clock") == 0) {
    failed = set_clock(&args, &at);
  } else if (strcmp(cmd, "entropy") == 0) {
    failed = add_entropy(args, &at);
  } else if (strcmp(cmd, "restore") == 0) {
    /* Both are attempted; the reply names each outcome so the agent can report them apart. */
    at = append(at, "clock=");
    int c = set_clock(&args, &at);
    if (!c) at = append(at, "ok");
    at = append(at, " rng=");
    int r = add_entropy(args, &at);
    if (!r) at = append(at, "ok");
    failed = c || r;
  } else {
    at = append(at, "unknown command ");
    at = append(at, cmd);
    failed = 1;
  }
  if (!failed && strcmp(cmd, "ping") != 0) at = append(ok_at, "ok");
  out[at++] = '\n';
  for (int done = 0; done < at;) {
    ssize_t w = write(1, out + done, at - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(1);
    done += (int)w;
  }
}

int main(void) {
  int len = 0;
  /* Opened now, in the parent: a restored child then skips the path lookup. */
  random_fd = open("/dev/random", O_RDONLY | O_CLOEXEC);
  for (;;) {
    ssize_t r = read(0, line + len, MAX_LINE - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0; /* the agent is gone */
    len += (int)r;
    int start = 0;
    for (int i = 0; i < len; i++) {
      if (line[i] != '\n') continue;
      line[i] = 0;
      handle(line + start);
      start = i + 1;
    }
    if (start == 0 && len == MAX_LINE) len = 0; /* an over-long line: drop it */
    else {
      memmove(line, line + start, len - start);
      len -= start;
    }
  }
}
