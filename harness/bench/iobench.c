/*
 * iobench.c - the I/O workloads of `harness bench`, run inside the container so the
 * container's own view of its root filesystem (raw folder or overlay mount) is measured.
 *
 * Static, no libc function that needs NSS or shared objects (like the probe).  Every verb
 * times its operations with clock_gettime(CLOCK_MONOTONIC) and prints one JSON line:
 *   {"op": VERB, "seconds": S, "count": OPS, "bytes": B}
 *
 * Usage: iobench VERB [ARGS...] [VERB [ARGS...]]...   (each verb takes a fixed number of args)
 *
 *   seq-read FILE                 read FILE to the end with 1 MiB reads
 *   seq-write FILE MIB            create FILE, write MIB MiB with 1 MiB writes, fsync, close
 *   rand-read FILE COUNT SEED     COUNT preads of 4 KiB at 4 KiB-aligned offsets (xorshift SEED)
 *   files-create DIR N SIZE       mkdir DIR; create N files of SIZE bytes (f000000...)
 *   files-stat DIR N              stat the N files
 *   readdir DIR                   list DIR (opendir/readdir/closedir), count the entries
 *   files-delete DIR N            unlink the N files, rmdir DIR
 *   copy-up FILE                  open FILE O_WRONLY, write one byte at offset 0, close
 *                                 (on overlayfs the open copies a lower file up)
 *   stat-all DIR                  list DIR (untimed), then lstat every entry (timed)
 *   unlink-all DIR                list DIR (untimed), then unlink every entry (timed)
 *                                 (on overlayfs a lower file becomes a whiteout)
 *   unshare-exec PATH             the namespace floor, not an I/O verb: unshare pid, net, ipc,
 *                                 uts and mount namespaces, fork, exec PATH with the remaining
 *                                 arguments, wait, exit with its status (must be last)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *verb, const char *arg)
{
    fprintf(stderr, "iobench: %s %s: %s\n", verb, arg, strerror(errno));
    exit(1);
}

static void emit(const char *op, double seconds, long long count, long long bytes)
{
    printf("{\"op\": \"%s\", \"seconds\": %.9f, \"count\": %lld, \"bytes\": %lld}\n", op, seconds, count, bytes);
    fflush(stdout);
}

static char buf[MIB];

static void seq_read(char **a)
{
    int fd = open(a[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("seq-read", a[0]);
    long long total = 0;
    double t0 = now();
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) die("seq-read", a[0]);
        if (n == 0) break;
        total += n;
    }
    double t1 = now();
    close(fd);
    emit("seq-read", t1 - t0, 1, total);
}

static void seq_write(char **a)
{
    long mib = atol(a[1]);
    memset(buf, 0xa5, sizeof buf);
    double t0 = now();
    int fd = open(a[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("seq-write", a[0]);
    for (long i = 0; i < mib; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("seq-write", a[0]);
    if (fsync(fd) < 0) die("seq-write", a[0]);
    close(fd);
    double t1 = now();
    emit("seq-write", t1 - t0, 1, (long long)mib * MIB);
}

static void rand_read(char **a)
{
    long count = atol(a[1]);
    uint64_t x = (uint64_t)atoll(a[2]) * 2654435761u + 88172645463325252ull;
    int fd = open(a[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("rand-read", a[0]);
    struct stat st;
    if (fstat(fd, &st) < 0) die("rand-read", a[0]);
    long long blocks = st.st_size / 4096;
    if (blocks < 1) { errno = EINVAL; die("rand-read", a[0]); }
    double t0 = now();
    for (long i = 0; i < count; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (pread(fd, buf, 4096, (off_t)(x % (uint64_t)blocks) * 4096) != 4096) die("rand-read", a[0]);
    }
    double t1 = now();
    close(fd);
    emit("rand-read-4k", t1 - t0, count, (long long)count * 4096);
}

static void name_of(char *out, size_t len, const char *dir, long i)
{
    snprintf(out, len, "%s/f%06ld", dir, i);
}

static void files_create(char **a)
{
    long n = atol(a[1]), size = atol(a[2]);
    char path[4096];
    memset(buf, 0x5a, size < MIB ? (size_t)size : MIB);
    double t0 = now();
    if (mkdir(a[0], 0755) < 0) die("files-create", a[0]);
    for (long i = 0; i < n; i++) {
        name_of(path, sizeof path, a[0], i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) die("files-create", path);
        if (size > 0 && write(fd, buf, (size_t)size) != size) die("files-create", path);
        close(fd);
    }
    double t1 = now();
    emit("small-files-create", t1 - t0, n, (long long)n * size);
}

static void files_stat(char **a)
{
    long n = atol(a[1]);
    char path[4096];
    struct stat st;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        name_of(path, sizeof path, a[0], i);
        if (lstat(path, &st) < 0) die("files-stat", path);
    }
    double t1 = now();
    emit("small-files-stat", t1 - t0, n, 0);
}

static long list(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    if (!d) die("readdir", dir);
    long n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (names) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                *names = realloc(*names, cap * sizeof **names);
                if (!*names) die("readdir", dir);
            }
            (*names)[n] = strdup(e->d_name);
        }
        n++;
    }
    closedir(d);
    return n;
}

static void do_readdir(char **a)
{
    double t0 = now();
    long n = list(a[0], NULL);
    double t1 = now();
    emit("readdir", t1 - t0, n, 0);
}

static void files_delete(char **a)
{
    long n = atol(a[1]);
    char path[4096];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        name_of(path, sizeof path, a[0], i);
        if (unlink(path) < 0) die("files-delete", path);
    }
    if (rmdir(a[0]) < 0) die("files-delete", a[0]);
    double t1 = now();
    emit("small-files-delete", t1 - t0, n, 0);
}

static void copy_up(char **a)
{
    struct stat st;
    if (stat(a[0], &st) < 0) die("copy-up", a[0]);
    double t0 = now();
    int fd = open(a[0], O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("copy-up", a[0]);
    if (pwrite(fd, "x", 1, 0) != 1) die("copy-up", a[0]);
    close(fd);
    double t1 = now();
    emit("copy-up", t1 - t0, 1, st.st_size);
}

static void per_entry(const char *op, const char *dir, int do_unlink)
{
    char **names = NULL, path[4096];
    long n = list(dir, &names);
    struct stat st;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if ((do_unlink ? unlink(path) : lstat(path, &st)) < 0) die(op, path);
    }
    double t1 = now();
    emit(op, t1 - t0, n, 0);
}

static void stat_all(char **a) { per_entry("stat-all", a[0], 0); }
static void unlink_all(char **a) { per_entry("unlink-all", a[0], 1); }

static int unshare_exec(char **argv)
{
    if (unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS) < 0) die("unshare-exec", "unshare");
    pid_t pid = fork();
    if (pid < 0) die("unshare-exec", "fork");
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) die("unshare-exec", "waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct verb { const char *name; int nargs; void (*run)(char **); };
static const struct verb verbs[] = {
    {"seq-read", 1, seq_read},     {"seq-write", 2, seq_write},   {"rand-read", 3, rand_read},
    {"files-create", 3, files_create}, {"files-stat", 2, files_stat}, {"readdir", 1, do_readdir},
    {"files-delete", 2, files_delete}, {"copy-up", 1, copy_up},   {"stat-all", 1, stat_all},
    {"unlink-all", 1, unlink_all},
};

int main(int argc, char **argv)
{
    /* Check the whole sequence first: nothing runs if any verb is unknown or short of args. */
    for (int pass = 0; pass < 2; pass++) {
        int i = 1;
        while (i < argc) {
            if (!strcmp(argv[i], "unshare-exec")) {
                if (i + 1 >= argc) goto usage;
                if (pass) return unshare_exec(argv + i + 1);
                break;
            }
            const struct verb *v = NULL;
            for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++)
                if (!strcmp(argv[i], verbs[k].name)) v = &verbs[k];
            if (!v || i + v->nargs > argc - 1) goto usage;
            if (pass) v->run(argv + i + 1);
            i += 1 + v->nargs;
        }
    }
    return 0;
usage:
    fprintf(stderr, "usage: iobench VERB [ARGS...]... (see iobench.c)\n");
    return 2;
}
