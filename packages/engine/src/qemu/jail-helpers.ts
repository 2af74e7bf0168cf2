/**
 * The jail's C helpers (compiled by host-helpers.ts). Each does one thing Node cannot:
 * - forkd-jail: a private mount namespace whose root is a tmpfs holding only the paths it is
 *   given (bind mounts, read-only unless said otherwise), then exec. Runs as root, before the uid drop.
 * - forkd-qmp-fd: hands QEMU a migration stream as a descriptor (QMP getfd over SCM_RIGHTS on the
 *   VM's second monitor, then `migrate`/`migrate-incoming fd:NAME` on that same monitor): with
 *   `-sandbox spawn=deny` QEMU cannot run the `exec:` commands migrations used before.
 * - forkd-ro-ram.so: QEMU 7.2 opens a memory-backend-file O_RDWR even for a private (share=off)
 *   mapping (no `rom=` before 8.2). Preloaded into a child's QEMU, it opens that one file O_RDONLY
 *   instead; a private writable mapping of a read-only descriptor is allowed, so the child runs
 *   while the kernel refuses it any write to the snapshot's memory image.
 */
import type { HostHelper } from './host-helpers.js';

export const JAIL_LAUNCHER: HostHelper = {
  name: 'forkd-jail',
  source: String.raw`#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
/* forkd-jail --root DIR [--ro P|--rw P|--dev P|--link P|--env K=V|--cwd D|--thp-off|--ksm]... -- PROG ARGS */
static void die(const char *what, const char *arg) {
  fprintf(stderr, "forkd-jail: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(126);
}
static void mkdirs(char *p) {
  for (char *s = p + 1; *s; s++)
    if (*s == '/') { *s = 0; if (mkdir(p, 0755) && errno != EEXIST) die("mkdir", p); *s = '/'; }
  if (mkdir(p, 0755) && errno != EEXIST) die("mkdir", p);
}
static void inside(char *dst, const char *root, const char *p) {
  if (p[0] != '/' || strstr(p, "/../") || snprintf(dst, PATH_MAX, "%s%s", root, p) >= PATH_MAX) { errno = EINVAL; die("bad path", p); }
}
/* kind: 'r' read-only data, 'w' writable data, 'd' device, 'x' read-only with exec (programs) */
static void bind(const char *root, const char *src, char kind) {
  char dst[PATH_MAX];
  struct stat st;
  inside(dst, root, src);
  if (stat(src, &st)) die("stat", src);
  if (S_ISDIR(st.st_mode)) mkdirs(dst);
  else {
    char *slash = strrchr(dst, '/');
    *slash = 0; mkdirs(dst); *slash = '/';
    int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) die("mount point", dst);
    close(fd);
  }
  if (mount(src, dst, NULL, MS_BIND | (kind == 'x' ? MS_REC : 0), NULL)) die("bind", src);
  unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID;
  if (kind == 'r' || kind == 'x') fl |= MS_RDONLY;
  if (kind != 'd') fl |= MS_NODEV;
  if (kind != 'x') fl |= MS_NOEXEC;
  if (mount(NULL, dst, NULL, fl, NULL)) die("remount", src);
}
int main(int argc, char **argv) {
  const char *root = NULL, *cwd = "/";
  int i, thp_off = 0, ksm = 0;
  for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--root") && i + 1 < argc) root = argv[++i];
  if (!root || i >= argc - 1) { fprintf(stderr, "usage: forkd-jail --root DIR [...] -- PROG ARGS\n"); return 2; }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL)) die("pdeathsig", NULL);
  umask(022); /* the view's directories must be traversable by the VM's uid, whatever the daemon's umask */
  if (unshare(CLONE_NEWNS)) die("unshare", "CLONE_NEWNS");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make private", "/");
  if (mkdir(root, 0700) && errno != EEXIST) die("mkdir", root);
  if (mount("forkd-jail", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=256k")) die("tmpfs", root);
  for (i = 1; strcmp(argv[i], "--"); i++) {
    const char *o = argv[i], *v = argv[i + 1];
    if (!strcmp(o, "--root")) { i++; continue; }
    if (!strcmp(o, "--thp-off")) { thp_off = 1; continue; }
    if (!strcmp(o, "--ksm")) { ksm = 1; continue; }
    i++;
    if (!strcmp(o, "--ro")) bind(root, v, 'r');
    else if (!strcmp(o, "--rw")) bind(root, v, 'w');
    else if (!strcmp(o, "--dev")) bind(root, v, 'd');
    else if (!strcmp(o, "--prog")) bind(root, v, 'x');
    else if (!strcmp(o, "--cwd")) cwd = v;
    else if (!strcmp(o, "--env")) { if (putenv((char *)v)) die("putenv", v); }
    else if (!strcmp(o, "--link")) {
      char target[PATH_MAX], dst[PATH_MAX];
      ssize_t n = readlink(v, target, sizeof target - 1);
      if (n < 0) die("readlink", v);
      target[n] = 0;
      inside(dst, root, v);
      if (symlink(target, dst)) die("symlink", v);
    } else { errno = EINVAL; die("unknown option", o); }
  }
  char old[PATH_MAX];
  snprintf(old, sizeof old, "%s/.old", root);
  if (mkdir(old, 0700)) die("mkdir", old);
  if (syscall(SYS_pivot_root, root, old)) die("pivot_root", root);
  if (chdir("/")) die("chdir", "/");
  if (umount2("/.old", MNT_DETACH)) die("umount", "/.old");
  if (rmdir("/.old")) die("rmdir", "/.old");
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) die("remount", "/");
  if (chdir(cwd)) die("chdir", cwd);
  umask(077); /* what QEMU creates (sockets, console log) is its own */
  if (thp_off && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) perror("prctl(PR_SET_THP_DISABLE)");
  if (ksm && prctl(67 /* PR_SET_MEMORY_MERGE, Linux 6.4 */, 1, 0, 0, 0)) perror("prctl(PR_SET_MEMORY_MERGE)");
  execv(argv[i + 1], argv + i + 1);
  die("exec", argv[i + 1]);
  return 127;
}
`,
};

export const QMP_FD_PASSER: HostHelper = {
  name: 'forkd-qmp-fd',
  source: String.raw`#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
/* forkd-qmp-fd QMP_SOCKET read|create|connect TARGET migrate|migrate-incoming
 * Opens TARGET (read: O_RDONLY; create: new file 0600; connect: a Unix socket), hands it to QEMU
 * with getfd, and starts the migration on it from the same monitor (fd names are per monitor). */
static int q;
static void die(const char *what, const char *arg) { fprintf(stderr, "forkd-qmp-fd: %s %s: %s\n", what, arg, strerror(errno)); exit(2); }
static int unix_connect(const char *p) {
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  if (strlen(p) >= sizeof a.sun_path) { errno = ENAMETOOLONG; die("socket path", p); }
  strcpy(a.sun_path, p);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) die("connect", p);
  return s;
}
/* The next line that is not an event; exits unless it is a "return". */
static void reply(const char *what) {
  char line[65536];
  for (;;) {
    size_t n = 0;
    for (;;) {
      char c;
      ssize_t r = read(q, &c, 1);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) { errno = EPIPE; die("QMP closed during", what); }
      if (c == '\n') break;
      if (n < sizeof line - 1) line[n++] = c;
    }
    line[n] = 0;
    if (strstr(line, "\"event\"")) continue;
    if (strstr(line, "\"return\"") || (!strcmp(what, "greeting") && strstr(line, "\"QMP\""))) return;
    fprintf(stderr, "forkd-qmp-fd: %s: %s\n", what, line);
    exit(1);
  }
}
static void send_cmd(const char *json, int fd) {
  struct iovec iov = { .iov_base = (void *)json, .iov_len = strlen(json) };
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (fd >= 0) {
    memset(cbuf, 0, sizeof cbuf);
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  if (sendmsg(q, &m, MSG_NOSIGNAL) != (ssize_t)iov.iov_len) die("send", json);
}
int main(int argc, char **argv) {
  if (argc != 5 || (strcmp(argv[4], "migrate") && strcmp(argv[4], "migrate-incoming"))) {
    fprintf(stderr, "usage: forkd-qmp-fd QMP_SOCKET read|create|connect TARGET migrate|migrate-incoming\n");
    return 2;
  }
  int fd;
  if (!strcmp(argv[2], "read")) fd = open(argv[3], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  else if (!strcmp(argv[2], "create")) fd = open(argv[3], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  else if (!strcmp(argv[2], "connect")) fd = unix_connect(argv[3]);
  else { errno = EINVAL; die("mode", argv[2]); }
  if (fd < 0) die("open", argv[3]);
  q = unix_connect(argv[1]);
  reply("greeting");
  send_cmd("{\"execute\":\"qmp_capabilities\"}\n", -1);
  reply("qmp_capabilities");
  send_cmd("{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"forkd-migration\"}}\n", fd);
  reply("getfd");
  char cmd[128];
  snprintf(cmd, sizeof cmd, "{\"execute\":\"%s\",\"arguments\":{\"uri\":\"fd:forkd-migration\"}}\n", argv[4]);
  send_cmd(cmd, -1);
  reply(argv[4]);
  return 0;
}
`,
};

export const RO_RAM_SHIM: HostHelper = {
  name: 'forkd-ro-ram',
  cflags: ['-shared', '-fPIC', '-ldl'],
  source: String.raw`#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
/* Opens $FORKD_RO_RAM read-only when QEMU asks for read-write (see jail-helpers.ts). */
static int ro_flags(const char *p, int flags) {
  const char *ro = getenv("FORKD_RO_RAM");
  if (ro && p && !strcmp(p, ro) && (flags & O_ACCMODE) == O_RDWR) flags = (flags & ~O_ACCMODE) | O_RDONLY;
  return flags;
}
#define WRAP(name)                                                          \
  int name(const char *p, int flags, ...) {                                 \
    static int (*real)(const char *, int, ...);                             \
    mode_t mode = 0;                                                        \
    if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
    if (flags & (O_CREAT | __O_TMPFILE)) {                                  \
      va_list a; va_start(a, flags); mode = va_arg(a, mode_t); va_end(a);   \
    }                                                                       \
    return real(p, ro_flags(p, flags), mode);                               \
  }
WRAP(open)
WRAP(open64)
int __open_2(const char *p, int flags) { return open(p, flags); }
int __open64_2(const char *p, int flags) { return open64(p, flags); }
`,
};
