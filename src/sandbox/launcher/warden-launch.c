/*
 * warden-launch: what stands between the service and bwrap. One process, one exec, no shell: it
 * replaces a bash prologue plus setpriv (two execs and ~3.5 ms of CPU per sandbox).
 *
 * Run as the service's user (root in production). In this order, failing closed (exit 125 with a
 * message on stderr) at the first step that does not succeed:
 *   1. closes every descriptor above --keep-fds (the service may hold some without close-on-exec);
 *   2. sets the rlimits it is given (soft and hard, or soft:hard);
 *   3. writes its pid into each --cgroup file (cgroup.procs) while still root, so everything the run
 *      starts is inside the cgroups from its first instruction;
 *   4. with --uid/--gid: no supplementary groups, an empty capability bounding set, no ambient and no
 *      inheritable capabilities, then real, effective and saved gid and uid set to the leased ones
 *      (which empties the permitted and effective sets); it checks that no capability is left;
 *   5. execs the command after `--` (bwrap).
 *
 * Arguments (numbers only, no shell parsing):
 *   --keep-fds N  --rlimit NAME=SOFT[:HARD] ...  --cgroup FILE ...  [--uid U --gid G]  -- PATH ARGV...
 * NAME is one of core, fsize, nofile, nproc, cpu, data.
 *
 * `warden-launch --serve SERVICE_PID` is the spawner instead (spawner.c): a small process that forks
 * and launches sandboxes on the service's behalf, so the service's large address space is never
 * forked (≈ 1 ms of the service's CPU per 20 MB of its memory, per sandbox).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#define FAIL_STATUS 125
#define MAX_CGROUPS 8
#define MAX_RLIMITS 8

static void die(const char *what) {
  fprintf(stderr, "warden-launch: %s: %s\n", what, strerror(errno));
  _exit(FAIL_STATUS);
}

static void usage(const char *what) {
  fprintf(stderr, "warden-launch: %s\n", what);
  _exit(FAIL_STATUS);
}

static unsigned long long number(const char *s) {
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9') usage("expected a number");
  unsigned long long n = strtoull(s, &end, 10);
  if (errno || *end) usage("expected a number");
  return n;
}

struct limit {
  const char *name;
  int resource;
  struct rlimit value;
};

static struct limit parse_rlimit(char *spec) {
  static const struct {
    const char *name;
    int resource;
  } names[] = {{"core", RLIMIT_CORE},   {"fsize", RLIMIT_FSIZE}, {"nofile", RLIMIT_NOFILE},
               {"nproc", RLIMIT_NPROC}, {"cpu", RLIMIT_CPU},     {"data", RLIMIT_DATA}};
  char *eq = strchr(spec, '=');
  if (!eq) usage("--rlimit NAME=SOFT[:HARD]");
  *eq = '\0';
  char *hard = strchr(eq + 1, ':');
  if (hard) *hard++ = '\0';
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(names[i].name, spec) != 0) continue;
    struct limit l = {names[i].name, names[i].resource, {number(eq + 1), 0}};
    l.value.rlim_max = hard ? number(hard) : l.value.rlim_cur;
    if (l.value.rlim_cur > l.value.rlim_max) usage("soft limit above hard limit");
    return l;
  }
  usage("unknown rlimit");
  return (struct limit){0};
}

static void close_above(int keep) {
  if (syscall(SYS_close_range, keep + 1, ~0U, 0) == 0) return;
  /* Kernels before 5.9: walk the open descriptors. */
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) die("listing descriptors");
  int own = dirfd(dir);
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = (int)number(e->d_name);
    if (fd > keep && fd != own) close(fd);
  }
  closedir(dir);
}

static void join_cgroup(const char *procs) {
  char pid[24];
  int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(procs);
  if (write(fd, pid, (size_t)len) != len) die(procs);
  if (close(fd) != 0) die(procs);
}

static void capabilities(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
  if (syscall(SYS_capget, &head, data) != 0) die("capget");
}

static void become(uid_t uid, gid_t gid) {
  if (setgroups(0, NULL) != 0) die("setgroups");
  /* The bounding set can only be lowered with CAP_SETPCAP: before the uid changes. */
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) die("dropping the bounding set");
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    die("clearing ambient capabilities");
  }
  struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  capabilities(data);
  data[0].inheritable = data[1].inheritable = 0;
  if (syscall(SYS_capset, &head, data) != 0) die("clearing inheritable capabilities");
  if (setresgid(gid, gid, gid) != 0) die("setresgid");
  if (setresuid(uid, uid, uid) != 0) die("setresuid");
  /* Leaving uid 0 empties the permitted and effective sets (no keep-caps): make sure it did. */
  capabilities(data);
  for (int i = 0; i < 2; i++) {
    if (data[i].effective || data[i].permitted || data[i].inheritable) usage("capabilities remain");
  }
  uid_t r, e, s;
  if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid) usage("uid did not change");
}

/* The launcher proper: argv as documented above (argv[0] is ignored). Returns only by exec. */
int launch(int argc, char **argv) {
  long keep = -1;
  long long uid = -1, gid = -1;
  struct limit limits[MAX_RLIMITS];
  const char *cgroups[MAX_CGROUPS];
  int nlimits = 0, ncgroups = 0, i = 1;
  for (; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--") == 0) break;
    if (i + 1 >= argc) usage("option without a value");
    char *value = argv[++i];
    if (strcmp(opt, "--keep-fds") == 0) keep = (long)number(value);
    else if (strcmp(opt, "--uid") == 0) uid = (long long)number(value);
    else if (strcmp(opt, "--gid") == 0) gid = (long long)number(value);
    else if (strcmp(opt, "--rlimit") == 0 && nlimits < MAX_RLIMITS) limits[nlimits++] = parse_rlimit(value);
    else if (strcmp(opt, "--cgroup") == 0 && ncgroups < MAX_CGROUPS) cgroups[ncgroups++] = value;
    else usage("unknown or repeated option");
  }
  if (keep < 2 || i + 1 >= argc) usage("usage: --keep-fds N [options] -- PATH ARGV...");
  if ((uid < 0) != (gid < 0) || uid == 0 || gid == 0) usage("--uid and --gid go together, never 0");

  close_above((int)keep);
  for (int l = 0; l < nlimits; l++) {
    if (setrlimit(limits[l].resource, &limits[l].value) != 0) die(limits[l].name);
  }
  for (int c = 0; c < ncgroups; c++) join_cgroup(cgroups[c]);
  if (uid > 0) become((uid_t)uid, (gid_t)gid);
  /* Nothing of the environment it was started with (the spawner's has its channel's number). */
  char *env[] = {"PATH=/usr/bin:/bin", NULL};
  execve(argv[i + 1], argv + i + 1, env);
  die(argv[i + 1]);
  return FAIL_STATUS;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--serve") == 0) return serve((pid_t)number(argv[2]));
  return launch(argc, argv);
}
