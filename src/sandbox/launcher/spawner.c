/*
 * The spawner (`warden-launch --serve SERVICE_PID`): forks and launches sandboxes for the service
 * (src/sandbox/spawner.ts is the other end).
 *
 * Why: a fork copies the page tables of the process that forks, and the service's are large
 * (≈ 150–200 MB of memory: ≈ 1 ms of its CPU per 20 MB, per sandbox, with its event loop stopped
 * meanwhile). This process is a few hundred kB, and its child runs the launcher without an exec.
 *
 * Requests come on stdin from the service alone, binary, native-endian u32s:
 *   u32 length of the rest, then one of
 *   'K' u32 id u32 signal            signal the process of spawn `id`, if it has not been reaped
 *   'S' u32 id u32 nslots SLOT...    fork; the child gets slot i as descriptor i and runs the
 *       u32 argc ARG\0...            launcher on the arguments (warden-launch.c)
 * SLOT is one of
 *   'p'              a socket pair: one end is the child's, the other is passed to the service
 *   'd' u32 n BYTES  a memory file holding the bytes (bwrap's --args, --seccomp, --file)
 *   'f' PATH\0       that host file, opened read-only
 *   'n'              /dev/null
 *   's'              a pipe the spawner reads itself: bwrap's --json-status-fd
 * Answers go on the Node IPC channel (NODE_CHANNEL_FD), one JSON line each, and each passed
 * descriptor in a message of its own, as Node's handle protocol has it:
 *   {"cmd":"NODE_HANDLE","type":"net.Socket","msg":{"w":"fd","id":I,"slot":S}}  + the descriptor
 *   {"w":"pid","id":I,"pid":P}  or  {"w":"error","id":I,"error":"..."}
 *   {"w":"exit","id":I,"code":C,"signal":S,"started":B}  (code or signal null; started: bwrap
 *                                                         reported its sandbox's pid)
 * It exits, killing what it started, when the service goes away: its stdin or its channel closes,
 * or the parent-death signal comes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"

#define MAX_FRAME (1u << 30)
#define MAX_SLOTS 4096
#define STATUS_CAP 4096

struct child {
  uint32_t id;
  pid_t pid;
  int status;
};

static struct child *children;
static size_t nchildren, capacity;
static int ipc = -1;

static void quit(int status) {
  for (size_t i = 0; i < nchildren; i++) kill(children[i].pid, SIGKILL);
  _exit(status);
}

static void fatal(const char *what) {
  fprintf(stderr, "warden-spawner: %s: %s\n", what, strerror(errno));
  quit(1);
}

/* One JSON line on the channel, with a descriptor or not. Blocking, whole: SIGCHLD is blocked. */
static void send_line(const char *line, int fd) {
  size_t len = strlen(line);
  struct iovec iov = {(void *)line, len};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  ssize_t n;
  do n = sendmsg(ipc, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  /* The service is gone (or a message was cut, which its parser could not take): nothing to serve. */
  if (n != (ssize_t)len) quit(0);
}

static void send_error(uint32_t id, const char *what) {
  char line[256];
  snprintf(line, sizeof line, "{\"w\":\"error\",\"id\":%u,\"error\":\"%s: %s\"}\n", id, what, strerror(errno));
  send_line(line, -1);
}

/* Reads exactly n bytes; false at end of input before the first byte. */
static int read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fatal("reading a request");
    if (r == 0) {
      if (got == 0) return 0;
      errno = EPROTO;
      fatal("request cut short");
    }
    got += (size_t)r;
  }
  return 1;
}

struct cursor {
  const char *p, *end;
};

static void malformed(void) {
  errno = EPROTO;
  fatal("malformed request");
}

static const char *take(struct cursor *c, size_t n) {
  if ((size_t)(c->end - c->p) < n) malformed();
  const char *at = c->p;
  c->p += n;
  return at;
}

static uint32_t u32(struct cursor *c) {
  uint32_t v;
  memcpy(&v, take(c, sizeof v), sizeof v);
  return v;
}

static const char *str(struct cursor *c) {
  const char *nul = memchr(c->p, '\0', (size_t)(c->end - c->p));
  if (!nul) malformed();
  return take(c, (size_t)(nul - c->p) + 1);
}

static int memory_file(const char *data, size_t n) {
  int fd = memfd_create("warden", MFD_CLOEXEC);
  if (fd < 0) return -1;
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, data + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      close(fd);
      return -1;
    }
    done += (size_t)w;
  }
  if (lseek(fd, 0, SEEK_SET) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* In the forked child: slot i becomes descriptor i, then the launcher takes over (it closes the rest). */
static void launch_child(const int *fds, uint32_t nslots, int argc, char **argv, pid_t spawner) {
  /* Dies with the spawner (so with the service). A change of uid clears it: bwrap sets its own. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != spawner) _exit(125);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int *moved = calloc(nslots, sizeof *moved);
  if (!moved) _exit(125);
  /* Above every target first, so no dup2 overwrites a slot still to be placed. */
  for (uint32_t i = 0; i < nslots; i++) {
    moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, (int)nslots);
    if (moved[i] < 0) _exit(125);
  }
  for (uint32_t i = 0; i < nslots; i++) {
    if (dup2(moved[i], (int)i) < 0) _exit(125);
  }
  launch(argc, argv);
  _exit(125);
}

static void spawn(struct cursor *c) {
  uint32_t id = u32(c), nslots = u32(c);
  if (nslots < 3 || nslots > MAX_SLOTS) malformed();
  int *fds = malloc(nslots * sizeof *fds);
  int *theirs = malloc(nslots * sizeof *theirs);
  if (!fds || !theirs) fatal("memory");
  int status = -1;
  const char *failed = NULL;
  /* Every slot is read even after a failure, so the arguments that follow are found. */
  for (uint32_t i = 0; i < nslots; i++) {
    int fd = -1, pair[2];
    theirs[i] = -1;
    switch (*take(c, 1)) {
      case 'p':
        if (!failed && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
          fd = pair[0];
          theirs[i] = pair[1];
        }
        break;
      case 'd': {
        uint32_t n = u32(c);
        const char *data = take(c, n);
        if (!failed) fd = memory_file(data, n);
        break;
      }
      case 'f': {
        const char *path = str(c);
        if (!failed) fd = open(path, O_RDONLY | O_CLOEXEC);
        break;
      }
      case 'n':
        if (!failed) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        break;
      case 's':
        if (!failed && status < 0 && pipe2(pair, O_CLOEXEC) == 0) {
          fd = pair[1];
          status = pair[0];
          fcntl(status, F_SETFL, O_NONBLOCK);
        }
        break;
      default:
        malformed();
    }
    if (fd < 0 && !failed) failed = "preparing descriptors";
    fds[i] = fd;
  }
  int argc = (int)u32(c);
  if (argc < 1 || argc > 65536) malformed();
  char **argv = malloc(((size_t)argc + 2) * sizeof *argv);
  if (!argv) fatal("memory");
  argv[0] = "warden-launch";
  for (int a = 0; a < argc; a++) argv[a + 1] = (char *)str(c);
  argv[argc + 1] = NULL;

  pid_t self = getpid();
  pid_t pid = failed ? -1 : fork();
  if (pid == 0) launch_child(fds, nslots, argc + 1, argv, self);
  if (pid < 0 && !failed) failed = "fork";
  int saved = errno;
  for (uint32_t i = 0; i < nslots; i++) {
    if (fds[i] >= 0) close(fds[i]);
  }
  char line[160];
  for (uint32_t i = 0; i < nslots; i++) {
    if (theirs[i] < 0) continue;
    if (!failed) {
      /* libuv writes a socket it is handed without waiting for it to be writable: a blocking one
       * would stop the service's event loop on a stdin larger than the socket's buffer. */
      fcntl(theirs[i], F_SETFL, fcntl(theirs[i], F_GETFL) | O_NONBLOCK);
      snprintf(line, sizeof line,
               "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Socket\",\"msg\":{\"w\":\"fd\",\"id\":%u,\"slot\":%u}}\n", id, i);
      send_line(line, theirs[i]);
    }
    close(theirs[i]);
  }
  free(argv);
  free(fds);
  free(theirs);
  if (failed) {
    if (status >= 0) close(status);
    errno = saved;
    send_error(id, failed);
    return;
  }
  if (nchildren == capacity) {
    capacity = capacity ? capacity * 2 : 64;
    children = realloc(children, capacity * sizeof *children);
    if (!children) fatal("memory");
  }
  children[nchildren++] = (struct child){id, pid, status};
  snprintf(line, sizeof line, "{\"w\":\"pid\",\"id\":%u,\"pid\":%d}\n", id, (int)pid);
  send_line(line, -1);
}

static void signal_child(struct cursor *c) {
  uint32_t id = u32(c), sig = u32(c);
  for (size_t i = 0; i < nchildren; i++) {
    if (children[i].id == id) kill(children[i].pid, (int)sig);
  }
}

/* bwrap writes {"child-pid": N} once its sandbox runs: before it exits, so it is in the pipe now. */
static int started(int status) {
  if (status < 0) return 0;
  char buf[STATUS_CAP + 1];
  size_t got = 0;
  ssize_t r;
  while (got < STATUS_CAP && ((r = read(status, buf + got, STATUS_CAP - got)) > 0 || (r < 0 && errno == EINTR))) {
    if (r > 0) got += (size_t)r;
  }
  buf[got] = '\0';
  close(status);
  return strstr(buf, "\"child-pid\"") != NULL;
}

static void reap(int sfd) {
  struct signalfd_siginfo info;
  while (read(sfd, &info, sizeof info) == sizeof info) {
  }
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (size_t i = 0; i < nchildren; i++) {
      if (children[i].pid != pid) continue;
      struct child done = children[i];
      children[i] = children[--nchildren];
      char code[16] = "null", sig[16] = "null", line[160];
      if (WIFEXITED(st)) snprintf(code, sizeof code, "%d", WEXITSTATUS(st));
      else snprintf(sig, sizeof sig, "%d", WTERMSIG(st));
      snprintf(line, sizeof line, "{\"w\":\"exit\",\"id\":%u,\"code\":%s,\"signal\":%s,\"started\":%s}\n", done.id,
               code, sig, started(done.status) ? "true" : "false");
      send_line(line, -1);
      break;
    }
  }
}

int serve(pid_t service) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fatal("parent-death signal");
  if (getppid() != service) quit(0);
  const char *channel = getenv("NODE_CHANNEL_FD");
  if (!channel) {
    errno = EINVAL;
    fatal("NODE_CHANNEL_FD");
  }
  ipc = atoi(channel);
  if (ipc < 3) {
    errno = EINVAL;
    fatal("NODE_CHANNEL_FD");
  }
  /* Nothing the service inherited and passed on without close-on-exec stays open here for good. */
  if (ipc > 3) syscall(SYS_close_range, 3, ipc - 1, 0);
  syscall(SYS_close_range, ipc + 1, ~0U, 0);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0) fatal("blocking SIGCHLD");
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) fatal("signalfd");
  for (;;) {
    struct pollfd p[3] = {{0, POLLIN, 0}, {ipc, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      fatal("poll");
    }
    if (p[2].revents) reap(sfd);
    if (p[1].revents) {
      /* Node's acknowledgements of passed descriptors: nothing to act on. */
      char drain[4096];
      ssize_t r = read(ipc, drain, sizeof drain);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) quit(0);
    }
    if (p[0].revents) {
      uint32_t len;
      if (!read_full(0, &len, sizeof len)) quit(0);
      if (len < 1 || len > MAX_FRAME) malformed();
      char *frame = malloc(len);
      if (!frame) fatal("memory");
      read_full(0, frame, len);
      struct cursor c = {frame + 1, frame + len};
      if (frame[0] == 'S') spawn(&c);
      else if (frame[0] == 'K') signal_child(&c);
      else malformed();
      free(frame);
    }
  }
}
