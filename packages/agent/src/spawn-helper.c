/*
 * forkd-spawn: starts the agent's commands with posix_spawn. Node's child_process forks the
 * agent (a ~60 MiB process), and under TCG copying its page tables costs ~25 ms per command;
 * posix_spawn from this tiny process is a vfork (nothing copied). Started before the snapshot.
 *
 * Requests on stdin, binary-safe: u32 little-endian length, then that many bytes of
 * NUL-terminated fields:
 *   <id> spawn <stdin path or ""> <cwd or ""> <argc> <argv...> <env "K=V"...>
 *   <id> release          (the agent has opened the output pipes: close this side's ends)
 *   <id> run <cap> <stdin path or ""> <cwd or ""> <argc> <argv...> <env...>
 *                         (run to completion: this helper collects up to cap bytes of each stream
 *                          and answers once, so the agent wakes once per command)
 *   <id> kill <signal>    (a `run` command's process group)
 * Replies on stdout, one line each:
 *   <id> ok <pid> <stdout read fd> <stderr read fd>   (the agent opens /proc/<our pid>/fd/<n>)
 *   <id> err <errno>
 *   <id> exit <code> <signal>                          (code -1 when killed by a signal)
 *   <id> done <code> <signal> <out bytes> <err bytes> <out truncated> <err truncated>
 *        followed by the bytes of stdout, then stderr (for `run`; pipes still held by a
 *        grandchild are given up GRACE_MS after the exit, as the agent does)
 * The child gets its own session (setsid), default signal dispositions and an empty mask.
 * Build: gcc -static -Os (the image builder does it, like forkd-sys).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (1 << 20)
#define MAX_FIELDS 8192
#define MAX_SLOTS 1024
#define PATH_BUF 4096
#define GRACE_MS 500

struct stream {
  int fd; /* -1 once closed */
  unsigned char *buf;
  size_t len, size;
  int truncated;
};

struct slot {
  int used, exited, released, run;
  char id[24];
  pid_t pid;
  int out_fd, err_fd;
  /* run mode */
  struct stream out, err;
  size_t cap;
  long long code, sig;
  struct timespec exited_at;
};

static struct slot slots[MAX_SLOTS];
static unsigned char frame[MAX_FRAME];
static char *fields[MAX_FIELDS + 1];
static int sigchld_pipe[2];

static void write_all(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(1); /* the agent is gone */
    s += w;
    n -= (size_t)w;
  }
}

static char *put_num(char *at, long long v) {
  char tmp[24];
  int i = 0, neg = v < 0;
  unsigned long long u = neg ? (unsigned long long)(-v) : (unsigned long long)v;
  do tmp[i++] = (char)('0' + u % 10), u /= 10; while (u > 0);
  if (neg) *at++ = '-';
  while (i > 0) *at++ = tmp[--i];
  return at;
}

/* "<id> <word> <n>..." + newline. */
static void reply(const char *id, const char *word, int count, const long long *nums) {
  char line[128];
  char *at = line;
  size_t idlen = strnlen(id, 23);
  memcpy(at, id, idlen);
  at += idlen;
  *at++ = ' ';
  size_t wl = strlen(word);
  memcpy(at, word, wl);
  at += wl;
  for (int i = 0; i < count; i++) {
    *at++ = ' ';
    at = put_num(at, nums[i]);
  }
  *at++ = '\n';
  write_all(line, (size_t)(at - line));
}

static void free_slot(struct slot *s) {
  if (s->out_fd >= 0) close(s->out_fd);
  if (s->err_fd >= 0) close(s->err_fd);
  if (s->out.fd >= 0) close(s->out.fd);
  if (s->err.fd >= 0) close(s->err.fd);
  free(s->out.buf);
  free(s->err.buf);
  memset(s, 0, sizeof(*s));
  s->out_fd = s->err_fd = s->out.fd = s->err.fd = -1;
}

static struct slot *find_by_id(const char *id) {
  for (int i = 0; i < MAX_SLOTS; i++)
    if (slots[i].used && strcmp(slots[i].id, id) == 0) return &slots[i];
  return NULL;
}

/* argv[0] without a '/' is looked up in the child's PATH, as execvp would with the child's env. */
static int resolve(const char *file, char **env, char *out) {
  if (strchr(file, '/')) {
    if (strlen(file) >= PATH_BUF) return ENAMETOOLONG;
    strcpy(out, file);
    return 0;
  }
  const char *path = "/usr/local/bin:/usr/bin:/bin";
  for (char **e = env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int err = ENOENT;
  size_t flen = strlen(file);
  while (*path) {
    const char *end = strchr(path, ':');
    size_t dlen = end ? (size_t)(end - path) : strlen(path);
    if (dlen + 1 + flen < PATH_BUF) {
      memcpy(out, dlen ? path : ".", dlen ? dlen : 1);
      size_t at = dlen ? dlen : 1;
      out[at++] = '/';
      memcpy(out + at, file, flen + 1);
      if (access(out, X_OK) == 0) return 0;
      if (errno == EACCES) err = EACCES;
    }
    if (!end) break;
    path = end + 1;
  }
  return err;
}

static void do_spawn(const char *id, char **f, int n, int run) {
  long long e[1];
  /* f: [cap, for run] stdin cwd argc argv... env... */
  size_t cap = 0;
  if (run) {
    if (n < 1) { e[0] = EINVAL; reply(id, "err", 1, e); return; }
    cap = (size_t)strtoull(f[0], NULL, 10);
    f++, n--;
  }
  if (n < 4) { e[0] = EINVAL; reply(id, "err", 1, e); return; }
  const char *stdin_path = f[0], *cwd = f[1];
  long argc = strtol(f[2], NULL, 10);
  if (argc < 1 || argc > n - 3) { e[0] = EINVAL; reply(id, "err", 1, e); return; }
  static char *argv[MAX_FIELDS + 1];
  memcpy(argv, f + 3, (size_t)argc * sizeof(char *));
  argv[argc] = NULL;
  char **env = f + 3 + argc; /* fields[] is NULL-terminated after the env */
  struct slot *s = NULL;
  for (int i = 0; i < MAX_SLOTS && !s; i++)
    if (!slots[i].used) s = &slots[i];
  if (!s || find_by_id(id)) { e[0] = s ? EEXIST : EAGAIN; reply(id, "err", 1, e); return; }
  static char file[PATH_BUF];
  int rc = resolve(argv[0], env, file);
  if (rc) { e[0] = rc; reply(id, "err", 1, e); return; }
  int out[2] = { -1, -1 }, err[2] = { -1, -1 };
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
    e[0] = errno;
    if (out[0] >= 0) close(out[0]), close(out[1]);
    reply(id, "err", 1, e);
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path[0] ? stdin_path : "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (cwd[0]) posix_spawn_file_actions_addchdir_np(&fa, cwd);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  rc = posix_spawn(&pid, file, &fa, &at, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    e[0] = rc;
    reply(id, "err", 1, e);
    return;
  }
  s->used = 1;
  strncpy(s->id, id, sizeof(s->id) - 1);
  s->pid = pid;
  if (run) {
    s->run = 1;
    s->cap = cap;
    s->out_fd = s->err_fd = -1;
    s->out.fd = out[0];
    s->err.fd = err[0];
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    return; /* answered once, when done */
  }
  s->out.fd = s->err.fd = -1;
  s->out_fd = out[0];
  s->err_fd = err[0];
  long long r[3] = { pid, out[0], err[0] };
  reply(id, "ok", 3, r);
}

/* Reads what the pipe has; keeps up to cap bytes, counts the rest as truncated; closes on EOF. */
static void drain(struct stream *st, size_t cap) {
  unsigned char chunk[65536];
  for (;;) {
    ssize_t r = read(st->fd, chunk, sizeof(chunk));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return; /* EAGAIN: nothing more now */
    if (r == 0) {
      close(st->fd);
      st->fd = -1;
      return;
    }
    size_t keep = st->len < cap ? cap - st->len : 0;
    if ((size_t)r > keep) st->truncated = 1;
    if (keep > (size_t)r) keep = (size_t)r;
    if (keep == 0) continue;
    if (st->len + keep > st->size) {
      size_t want = st->size ? st->size * 2 : 65536;
      while (want < st->len + keep) want *= 2;
      if (want > cap) want = cap;
      unsigned char *nb = realloc(st->buf, want);
      if (!nb) { st->truncated = 1; continue; }
      st->buf = nb;
      st->size = want;
    }
    memcpy(st->buf + st->len, chunk, keep);
    st->len += keep;
  }
}

static long long ms_since(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - t->tv_sec) * 1000LL + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* A run command is done once it exited and its pipes closed (or the grace after its exit ran out). */
static void finish_runs(void) {
  for (int i = 0; i < MAX_SLOTS; i++) {
    struct slot *s = &slots[i];
    if (!s->used || !s->run || !s->exited) continue;
    if ((s->out.fd >= 0 || s->err.fd >= 0) && ms_since(&s->exited_at) < GRACE_MS) continue;
    long long r[6] = { s->code, s->sig, (long long)s->out.len, (long long)s->err.len, s->out.truncated, s->err.truncated };
    reply(s->id, "done", 6, r);
    if (s->out.len) write_all((const char *)s->out.buf, s->out.len);
    if (s->err.len) write_all((const char *)s->err.buf, s->err.len);
    free_slot(s);
  }
}

static void handle_frame(unsigned char *p, uint32_t len) {
  int n = 0;
  unsigned char *end = p + len;
  while (p < end && n < MAX_FIELDS) {
    unsigned char *z = memchr(p, 0, (size_t)(end - p));
    if (!z) break;
    fields[n++] = (char *)p;
    p = z + 1;
  }
  fields[n] = NULL;
  if (n < 2 || strlen(fields[0]) == 0 || strlen(fields[0]) > 20) return;
  const char *id = fields[0];
  if (strcmp(fields[1], "spawn") == 0) {
    do_spawn(id, fields + 2, n - 2, 0);
  } else if (strcmp(fields[1], "run") == 0) {
    do_spawn(id, fields + 2, n - 2, 1);
  } else if (strcmp(fields[1], "kill") == 0) {
    struct slot *s = find_by_id(id);
    int sig = n > 2 ? atoi(fields[2]) : SIGKILL;
    if (s && s->run && !s->exited && sig > 0 && sig < 65) kill(-s->pid, sig);
  } else if (strcmp(fields[1], "release") == 0) {
    struct slot *s = find_by_id(id);
    if (!s) return;
    close(s->out_fd);
    close(s->err_fd);
    s->out_fd = s->err_fd = -1;
    s->released = 1;
    if (s->exited) free_slot(s);
  } else {
    long long e[1] = { ENOSYS };
    reply(id, "err", 1, e);
  }
}

static void reap(void) {
  char drain[64];
  while (read(sigchld_pipe[0], drain, sizeof(drain)) > 0) {}
  for (;;) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (int i = 0; i < MAX_SLOTS; i++) {
      struct slot *s = &slots[i];
      if (!s->used || s->pid != pid) continue;
      long long r[2] = { WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0 };
      s->exited = 1;
      if (s->run) {
        s->code = r[0];
        s->sig = r[1];
        clock_gettime(CLOCK_MONOTONIC, &s->exited_at);
        break;
      }
      reply(s->id, "exit", 2, r);
      if (s->released) free_slot(s);
      break;
    }
  }
}

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  (void)!write(sigchld_pipe[1], "x", 1);
  errno = saved;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK)) return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  size_t have = 0;
  uint32_t need = 0; /* frame length once the header is read; 0 = reading a header */
  unsigned char header[4];
  size_t header_have = 0;
  uint32_t skip = 0; /* bytes of an oversized frame still to discard */
  for (int i = 0; i < MAX_SLOTS; i++) slots[i].out_fd = slots[i].err_fd = slots[i].out.fd = slots[i].err.fd = -1;
  static struct pollfd pf[2 + 2 * MAX_SLOTS];
  static struct stream *pst[2 + 2 * MAX_SLOTS];
  static size_t pcap[2 + 2 * MAX_SLOTS];
  for (;;) {
    int np = 2, timeout = -1;
    pf[0] = (struct pollfd){ .fd = 0, .events = POLLIN };
    pf[1] = (struct pollfd){ .fd = sigchld_pipe[0], .events = POLLIN };
    for (int i = 0; i < MAX_SLOTS; i++) {
      struct slot *s = &slots[i];
      if (!s->used || !s->run) continue;
      struct stream *two[2] = { &s->out, &s->err };
      for (int k = 0; k < 2; k++) {
        if (two[k]->fd < 0) continue;
        pf[np] = (struct pollfd){ .fd = two[k]->fd, .events = POLLIN };
        pst[np] = two[k];
        pcap[np++] = s->cap;
      }
      if (s->exited) {
        long long left = GRACE_MS - ms_since(&s->exited_at);
        if (left < 0) left = 0;
        if (timeout < 0 || left < timeout) timeout = (int)left;
      }
    }
    if (poll(pf, (nfds_t)np, timeout) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (int i = 2; i < np; i++)
      if (pf[i].revents) drain(pst[i], pcap[i]);
    if (pf[1].revents) reap();
    finish_runs();
    if (!pf[0].revents) continue;
    unsigned char buf[65536];
    ssize_t r = read(0, buf, sizeof(buf));
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return 0; /* the agent is gone; its children keep their own sessions */
    for (ssize_t i = 0; i < r;) {
      if (skip > 0) {
        size_t k = (size_t)(r - i) < skip ? (size_t)(r - i) : skip;
        skip -= (uint32_t)k;
        i += (ssize_t)k;
      } else if (header_have < 4) {
        header[header_have++] = buf[i++];
        if (header_have == 4) {
          need = (uint32_t)header[0] | (uint32_t)header[1] << 8 | (uint32_t)header[2] << 16 | (uint32_t)header[3] << 24;
          have = 0;
          if (need > MAX_FRAME) skip = need, header_have = 0;
          else if (need == 0) header_have = 0;
        }
      } else {
        size_t k = (size_t)(r - i) < need - have ? (size_t)(r - i) : need - have;
        memcpy(frame + have, buf + i, k);
        have += k;
        i += (ssize_t)k;
        if (have == need) {
          handle_frame(frame, need);
          header_have = 0;
        }
      }
    }
  }
}
