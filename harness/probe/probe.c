/*
 * probe.c - the in-container probe of the OCI conformance harness.
 *
 * It runs as the process of a container whose root filesystem may hold nothing but this
 * binary: no /etc, no shared libc, maybe no /proc.  So it is linked statically, it uses no
 * libc function that needs NSS or loads shared objects, and every part of `report` that
 * cannot be read is recorded under "errors" instead of aborting the report.
 *
 * Usage: probe VERB [ARGS...] [VERB [ARGS...]]...
 *
 * The verbs run left to right; each takes a fixed number of arguments:
 *
 *   report            print one JSON document (one line) of everything the process sees
 *   hostname          print the hostname and a newline
 *   sleep SECONDS     sleep a decimal number of seconds (e.g. 0.25)
 *   exit N            exit at once with status N (0..255)
 *   pause             wait for a catchable signal, print its name ("SIGTERM") and go on
 *   cat FILE          copy FILE to stdout
 *   write FILE TEXT   create or truncate FILE (mode 0644) and write TEXT (no newline)
 *   ls DIR            print the names in DIR, sorted, one a line ("." and ".." left out)
 *   stat PATH         print lstat(PATH) as one line of JSON
 *   sched             print the process's scheduling attributes (sched_getattr) as JSON
 *   ioprio            print the process's I/O priority (ioprio_get) as JSON
 *   mempolicy         print the process's NUMA memory policy (get_mempolicy) as JSON
 *   personality       print the process's execution domain (personality) and uname machine
 *   exec PATH VERB    run PATH VERB in a child (fork, execv, wait); fails if exec or the child does
 *   euid              print "euid N", the effective uid
 *   times PATH        print {"path", "atime", "mtime"} of lstat(PATH) (seconds) as one line of JSON
 *   readn PATH MAX    read PATH until EOF or MAX bytes and print the number of bytes read
 *   try VERB ...      run VERB; if it fails, its message is on stderr and the sequence goes on
 *
 * The whole sequence is checked before anything runs: an unknown verb, a missing or
 * malformed argument prints the usage on stderr and exits 2.  A verb that fails prints
 * "probe: VERB ARG: reason" on stderr and exits 1.  stdout is flushed after every verb.
 *
 * Signals and `pause`: when the sequence holds a `pause`, the catchable signals are blocked
 * from the start and handled only inside `pause` (sigsuspend).  A signal that arrives before
 * the `pause` is reached therefore stays pending and is reported by it; this makes
 * "probe write READY x pause" race-free (the signal cannot kill the probe between the
 * write and the pause).  After the last `pause` the signals get their old dispositions back.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

extern char **environ;

/* The process's own arguments, for the report's "argv" (set first thing in main). */
static int probe_argc;
static char **probe_argv;

/* ------------------------------------------------------------------------------------- */
/* A tiny JSON emitter writing to stdout.                                                 */
/* ------------------------------------------------------------------------------------- */

#define JSON_MAX_DEPTH 16

static int json_depth;                    /* how many objects / arrays are open */
static int json_first[JSON_MAX_DEPTH];    /* nothing written yet at this depth? */
static int json_after_key;                /* a key was just written: no comma before value */

/* Write the comma that separates this value from the one before it, if any. */
static void json_value_start(void)
{
    if (json_after_key) {
        json_after_key = 0;
        return;
    }
    if (json_depth > 0) {
        if (!json_first[json_depth])
            putchar(',');
        json_first[json_depth] = 0;
    }
}

static void json_open(char bracket)
{
    json_value_start();
    putchar(bracket);
    json_depth++;
    json_first[json_depth] = 1;
}

static void json_close(char bracket)
{
    putchar(bracket);
    json_depth--;
}

static void json_object_begin(void) { json_open('{'); }
static void json_object_end(void) { json_close('}'); }
static void json_array_begin(void) { json_open('['); }
static void json_array_end(void) { json_close(']'); }

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the bytes there are
 * not valid UTF-8 (overlong forms, surrogates and code points above U+10FFFF are invalid).
 */
static size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;  /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F;  /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;  /* no overlong forms */
        else if (c == 0xF4)
            hi = 0x8F;  /* nothing above U+10FFFF */
    } else
        return 0;

    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/*
 * A JSON string of the n bytes at s.  Quotes, backslashes and control characters are
 * escaped; valid UTF-8 passes through; any other byte b is written as \u00bb (so a reader
 * sees it as the code point U+00bb, as if that byte were Latin-1).
 */
static void json_string_n(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;

    json_value_start();
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
            i++;
        } else if (c == '\n') {
            fputs("\\n", stdout);
            i++;
        } else if (c == '\t') {
            fputs("\\t", stdout);
            i++;
        } else if (c == '\r') {
            fputs("\\r", stdout);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            printf("\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            putchar(c);
            i++;
        } else {
            size_t len = utf8_sequence_length(s + i, n - i);
            if (len > 0) {
                fwrite(s + i, 1, len, stdout);
                i += len;
            } else {
                printf("\\u%04x", c);
                i++;
            }
        }
    }
    putchar('"');
}

static void json_string(const char *s) { json_string_n(s, strlen(s)); }

static void json_key(const char *key)
{
    json_string(key);
    putchar(':');
    json_after_key = 1;
}

static void json_int(long long v)
{
    json_value_start();
    printf("%lld", v);
}

static void json_uint(unsigned long long v)
{
    json_value_start();
    printf("%llu", v);
}

static void json_bool(int v)
{
    json_value_start();
    fputs(v ? "true" : "false", stdout);
}

static void json_null(void)
{
    json_value_start();
    fputs("null", stdout);
}

/* ------------------------------------------------------------------------------------- */
/* Small helpers.                                                                         */
/* ------------------------------------------------------------------------------------- */

/* Problems met while building the report: "errors" maps a key to a message. */
#define MAX_ERRORS 64
static struct {
    char key[64];
    char message[320];
} report_errors[MAX_ERRORS];
static int report_error_count;

static void record_error(const char *key, const char *fmt, ...)
{
    if (report_error_count >= MAX_ERRORS)
        return;
    va_list ap;
    snprintf(report_errors[report_error_count].key, sizeof(report_errors[0].key), "%s", key);
    va_start(ap, fmt);
    vsnprintf(report_errors[report_error_count].message, sizeof(report_errors[0].message), fmt,
              ap);
    va_end(ap);
    report_error_count++;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("probe: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (!p) {
        fputs("probe: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* Decode the octal escapes (\040 for a space, \134 for a backslash...) of /proc files in place. */
static void unescape_octal(char *s)
{
    char *out = s;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else
            *out++ = *s++;
    }
    *out = '\0';
}

/* Read a small text file (e.g. under /proc) into buf, NUL-terminated.  0 or -1 with errno. */
static int read_small_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t used = 0;
    while (used + 1 < size) {
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    close(fd);
    return 0;
}

/* Write a comma-separated list as a JSON array of (unescaped) strings; modifies s. */
static void json_comma_list(char *s)
{
    json_array_begin();
    if (*s) {
        char *save = NULL;
        for (char *item = strtok_r(s, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
            unescape_octal(item);
            json_string(item);
        }
    }
    json_array_end();
}

/* ------------------------------------------------------------------------------------- */
/* report: the parts, in the order they are printed.                                      */
/* ------------------------------------------------------------------------------------- */

static void report_names(void)
{
    char buf[256];

    json_key("hostname");
    if (gethostname(buf, sizeof(buf)) == 0) {
        buf[sizeof(buf) - 1] = '\0';
        json_string(buf);
    } else {
        record_error("hostname", "gethostname: %s", strerror(errno));
        json_null();
    }

    json_key("domainname");
    if (getdomainname(buf, sizeof(buf)) == 0) {
        buf[sizeof(buf) - 1] = '\0';
        json_string(buf);
    } else {
        record_error("domainname", "getdomainname: %s", strerror(errno));
        json_null();
    }

    struct utsname u;
    json_key("uname");
    if (uname(&u) == 0) {
        json_object_begin();
        json_key("sysname");
        json_string(u.sysname);
        json_key("nodename");
        json_string(u.nodename);
        json_key("release");
        json_string(u.release);
        json_key("version");
        json_string(u.version);
        json_key("machine");
        json_string(u.machine);
        json_object_end();
    } else {
        record_error("uname", "uname: %s", strerror(errno));
        json_null();
    }
}

static void report_ids(void)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;

    /* getresuid/getresgid cannot fail for the calling process. */
    getresuid(&ruid, &euid, &suid);
    getresgid(&rgid, &egid, &sgid);
    json_key("uid");
    json_int(ruid);
    json_key("euid");
    json_int(euid);
    json_key("suid");
    json_int(suid);
    json_key("gid");
    json_int(rgid);
    json_key("egid");
    json_int(egid);
    json_key("sgid");
    json_int(sgid);

    json_key("groups");
    int n = getgroups(0, NULL);
    gid_t *groups = n > 0 ? xmalloc((size_t)n * sizeof(gid_t)) : NULL;
    if (n >= 0 && (n == 0 || (n = getgroups(n, groups)) >= 0)) {
        json_array_begin();
        for (int i = 0; i < n; i++)
            json_int(groups[i]);
        json_array_end();
    } else {
        record_error("groups", "getgroups: %s", strerror(errno));
        json_null();
    }
    free(groups);
}

static void report_process(void)
{
    json_key("argv");
    json_array_begin();
    for (int i = 0; i < probe_argc; i++)
        json_string(probe_argv[i]);
    json_array_end();

    json_key("cwd");
    char *cwd = getcwd(NULL, 0);
    if (cwd) {
        json_string(cwd);
        free(cwd);
    } else {
        record_error("cwd", "getcwd: %s", strerror(errno));
        json_null();
    }

    json_key("env");
    json_array_begin();
    for (char **e = environ; e && *e; e++)
        json_string(*e);
    json_array_end();

    /* umask() can only be read by setting it: set it back at once. */
    mode_t mask = umask(0);
    umask(mask);
    json_key("umask");
    json_int(mask);
}

static const struct {
    const char *name;
    int resource;
} rlimit_table[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static void report_rlimits(void)
{
    json_key("rlimits");
    json_object_begin();
    for (size_t i = 0; i < ARRAY_LEN(rlimit_table); i++) {
        /* The 64-bit interface: RLIM64_INFINITY is 2^64-1, the value the OCI spec uses. */
        struct rlimit64 rl;
        json_key(rlimit_table[i].name);
        if (getrlimit64(rlimit_table[i].resource, &rl) == 0) {
            json_object_begin();
            json_key("soft");
            json_uint(rl.rlim_cur);
            json_key("hard");
            json_uint(rl.rlim_max);
            json_object_end();
        } else {
            char key[64];
            snprintf(key, sizeof(key), "rlimits.%s", rlimit_table[i].name);
            record_error(key, "getrlimit %s: %s", rlimit_table[i].name, strerror(errno));
            json_null();
        }
    }
    json_object_end();
}

/* Capability names by number (linux/capability.h); a bit beyond these shows as "CAP_<n>". */
static const char *const capability_names[] = {
    "CAP_CHOWN",            "CAP_DAC_OVERRIDE",  "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID",           "CAP_KILL",          "CAP_SETGID",          "CAP_SETUID",
    "CAP_SETPCAP",          "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",        "CAP_NET_RAW",       "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",       "CAP_SYS_RAWIO",     "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",        "CAP_SYS_ADMIN",     "CAP_SYS_BOOT",        "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",     "CAP_SYS_TIME",      "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
    "CAP_LEASE",            "CAP_AUDIT_WRITE",   "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",     "CAP_MAC_ADMIN",     "CAP_SYSLOG",          "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",    "CAP_AUDIT_READ",    "CAP_PERFMON",         "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

/* The five capability sets, in the order they are printed. */
enum { CAP_BOUNDING, CAP_EFFECTIVE, CAP_INHERITABLE, CAP_PERMITTED, CAP_AMBIENT, CAP_SETS };
static const char *const capability_set_names[CAP_SETS] = {
    "bounding", "effective", "inheritable", "permitted", "ambient",
};

/*
 * Read a per-capability set with prctl (PR_CAPBSET_READ or PR_CAP_AMBIENT_IS_SET), asking
 * for each number until the kernel says EINVAL (beyond its last capability).  This needs
 * no /proc.  Returns 0, or -1 with errno.
 */
static int read_capability_set_by_prctl(int option, int sub_option, uint64_t *mask)
{
    *mask = 0;
    for (unsigned long cap = 0; cap < 64; cap++) {
        int r = sub_option ? prctl(option, sub_option, cap, 0, 0) : prctl(option, cap, 0, 0, 0);
        if (r < 0) {
            if (errno == EINVAL && cap > 0)
                return 0;
            return -1;
        }
        if (r > 0)
            *mask |= (uint64_t)1 << cap;
    }
    return 0;
}

static void json_capability_names(uint64_t mask)
{
    const char *names[64];
    char unknown[64][12];
    int count = 0;

    for (int cap = 0; cap < 64; cap++) {
        if (!(mask & ((uint64_t)1 << cap)))
            continue;
        if ((size_t)cap < ARRAY_LEN(capability_names))
            names[count++] = capability_names[cap];
        else {
            snprintf(unknown[cap], sizeof(unknown[cap]), "CAP_%d", cap);
            names[count++] = unknown[cap];
        }
    }
    qsort(names, (size_t)count, sizeof(names[0]), compare_strings);
    json_array_begin();
    for (int i = 0; i < count; i++)
        json_string(names[i]);
    json_array_end();
}

static void report_capabilities(void)
{
    uint64_t masks[CAP_SETS] = {0};
    int ok[CAP_SETS] = {0};
    char failure[CAP_SETS][128];

    /* Effective, permitted, inheritable: one capget (version 3: two 32-bit words each). */
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &header, data) == 0) {
        masks[CAP_EFFECTIVE] = data[0].effective | (uint64_t)data[1].effective << 32;
        masks[CAP_PERMITTED] = data[0].permitted | (uint64_t)data[1].permitted << 32;
        masks[CAP_INHERITABLE] = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
        ok[CAP_EFFECTIVE] = ok[CAP_PERMITTED] = ok[CAP_INHERITABLE] = 1;
    } else {
        snprintf(failure[CAP_EFFECTIVE], sizeof(failure[0]), "capget: %s", strerror(errno));
        strcpy(failure[CAP_PERMITTED], failure[CAP_EFFECTIVE]);
        strcpy(failure[CAP_INHERITABLE], failure[CAP_EFFECTIVE]);
    }

    if (read_capability_set_by_prctl(PR_CAPBSET_READ, 0, &masks[CAP_BOUNDING]) == 0)
        ok[CAP_BOUNDING] = 1;
    else
        snprintf(failure[CAP_BOUNDING], sizeof(failure[0]), "prctl PR_CAPBSET_READ: %s",
                 strerror(errno));

    if (read_capability_set_by_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET,
                                     &masks[CAP_AMBIENT]) == 0)
        ok[CAP_AMBIENT] = 1;
    else
        snprintf(failure[CAP_AMBIENT], sizeof(failure[0]), "prctl PR_CAP_AMBIENT_IS_SET: %s",
                 strerror(errno));

    json_key("capabilities");
    json_object_begin();
    for (int set = 0; set < CAP_SETS; set++) {
        json_key(capability_set_names[set]);
        if (ok[set])
            json_capability_names(masks[set]);
        else {
            char key[64];
            snprintf(key, sizeof(key), "capabilities.%s", capability_set_names[set]);
            record_error(key, "%s", failure[set]);
            json_null();
        }
    }
    json_object_end();

    json_key("capabilities_raw");
    json_object_begin();
    for (int set = 0; set < CAP_SETS; set++) {
        char hex[24];
        json_key(capability_set_names[set]);
        if (ok[set]) {
            snprintf(hex, sizeof(hex), "0x%016llx", (unsigned long long)masks[set]);
            json_string(hex);
        } else
            json_null();
    }
    json_object_end();
}

/* The value of a "Name:\tvalue" line of /proc/self/status, or NULL. */
static const char *status_field(const char *status, const char *name)
{
    size_t len = strlen(name);
    for (const char *line = status; line && *line;) {
        if (strncmp(line, name, len) == 0 && line[len] == ':')
            return line + len + 1;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return NULL;
}

static void report_security(void)
{
    json_key("no_new_privs");
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (nnp >= 0)
        json_bool(nnp);
    else {
        record_error("no_new_privs", "prctl PR_GET_NO_NEW_PRIVS: %s", strerror(errno));
        json_null();
    }

    /*
     * Seccomp mode: /proc/self/status first.  prctl(PR_GET_SECCOMP) is the fallback when
     * /proc is missing; it would kill a process in strict mode, but such a process could
     * not have got this far anyway.
     */
    static char status[8192];
    const char *field = NULL;
    char status_failure[128] = "";
    if (read_small_file("/proc/self/status", status, sizeof(status)) == 0)
        field = status_field(status, "Seccomp");
    else
        snprintf(status_failure, sizeof(status_failure), "open /proc/self/status: %s",
                 strerror(errno));
    json_key("seccomp");
    if (field)
        json_int(strtol(field, NULL, 10));
    else {
        int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
        if (mode >= 0)
            json_int(mode);
        else {
            record_error("seccomp", "%s%sprctl PR_GET_SECCOMP: %s", status_failure,
                         status_failure[0] ? "; " : "", strerror(errno));
            json_null();
        }
    }

    json_key("oom_score_adj");
    char buf[64];
    if (read_small_file("/proc/self/oom_score_adj", buf, sizeof(buf)) == 0)
        json_int(strtol(buf, NULL, 10));
    else {
        record_error("oom_score_adj", "open /proc/self/oom_score_adj: %s", strerror(errno));
        json_null();
    }
}

static void report_namespaces(void)
{
    json_key("namespaces");
    DIR *dir = opendir("/proc/self/ns");
    if (!dir) {
        record_error("namespaces", "open /proc/self/ns: %s", strerror(errno));
        json_null();
        return;
    }

    char *names[64];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < (int)ARRAY_LEN(names)) {
        if (entry->d_name[0] == '.')
            continue;
        names[count++] = xstrdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, (size_t)count, sizeof(names[0]), compare_strings);

    json_object_begin();
    for (int i = 0; i < count; i++) {
        char path[128];
        struct stat st;
        snprintf(path, sizeof(path), "/proc/self/ns/%s", names[i]);
        if (stat(path, &st) == 0) {
            json_key(names[i]);
            json_uint(st.st_ino);
        } else {
            char key[96];
            snprintf(key, sizeof(key), "namespaces.%s", names[i]);
            record_error(key, "stat %s: %s", path, strerror(errno));
        }
        free(names[i]);
    }
    json_object_end();
}

/* Split s on single spaces into at most max fields; returns how many. */
static int split_spaces(char *s, char **fields, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *f = strtok_r(s, " ", &save); f && n < max; f = strtok_r(NULL, " ", &save))
        fields[n++] = f;
    return n;
}

/*
 * One line of /proc/self/mountinfo:
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   id parent major:minor root mount_point options [optional...] - fstype source super_options
 * Returns 0, or -1 if the line is malformed (nothing is written then).
 */
static int json_mountinfo_line(char *line)
{
    char *f[64];
    int n = split_spaces(line, f, (int)ARRAY_LEN(f));
    int dash = -1;
    for (int i = 6; i < n; i++)
        if (strcmp(f[i], "-") == 0) {
            dash = i;
            break;
        }
    unsigned major, minor;
    if (dash < 0 || n < dash + 3 || sscanf(f[2], "%u:%u", &major, &minor) != 2)
        return -1;

    json_object_begin();
    json_key("id");
    json_int(strtoll(f[0], NULL, 10));
    json_key("parent");
    json_int(strtoll(f[1], NULL, 10));
    json_key("major");
    json_int(major);
    json_key("minor");
    json_int(minor);
    unescape_octal(f[3]);
    json_key("root");
    json_string(f[3]);
    unescape_octal(f[4]);
    json_key("mount_point");
    json_string(f[4]);
    json_key("options");
    json_comma_list(f[5]);
    json_key("optional");
    json_array_begin();
    for (int i = 6; i < dash; i++)
        json_string(f[i]);
    json_array_end();
    unescape_octal(f[dash + 1]);
    json_key("fstype");
    json_string(f[dash + 1]);
    unescape_octal(f[dash + 2]);
    json_key("source");
    json_string(f[dash + 2]);
    json_key("super_options");
    if (n > dash + 3)
        json_comma_list(f[dash + 3]);
    else
        json_comma_list((char[]){""});
    json_object_end();
    return 0;
}

/*
 * One line of /proc/self/cgroup: "hierarchy:controller,list:path" ("0::/path" for v2).
 * Returns 0, or -1 if the line is malformed.
 */
static int json_cgroup_line(char *line)
{
    char *first = strchr(line, ':');
    char *second = first ? strchr(first + 1, ':') : NULL;
    if (!second)
        return -1;
    *first = *second = '\0';

    json_object_begin();
    json_key("hierarchy");
    json_int(strtoll(line, NULL, 10));
    json_key("controllers");
    json_comma_list(first + 1);
    json_key("path");
    json_string(second + 1);
    json_object_end();
    return 0;
}

/* "key": [ one object per line of path ], or null with an error. */
static void report_proc_lines(const char *key, const char *path, int (*emit_line)(char *))
{
    json_key(key);
    FILE *f = fopen(path, "re");
    if (!f) {
        record_error(key, "open %s: %s", path, strerror(errno));
        json_null();
        return;
    }
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    int number = 0, bad = 0;
    json_array_begin();
    while ((len = getline(&line, &size, f)) >= 0) {
        number++;
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = '\0';
        if (line[0] == '\0')
            continue;
        if (emit_line(line) != 0 && !bad++)
            record_error(key, "%s line %d: cannot parse it", path, number);
    }
    if (ferror(f))
        record_error(key, "read %s: %s", path, strerror(errno));
    json_array_end();
    free(line);
    fclose(f);
}

static int verb_report(char **args)
{
    (void)args;
    report_error_count = 0;

    json_object_begin();
    json_key("pid");
    json_int(getpid());
    json_key("ppid");
    json_int(getppid());
    report_names();
    report_ids();
    report_process();
    report_rlimits();
    report_capabilities();
    report_security();
    report_namespaces();
    report_proc_lines("mounts", "/proc/self/mountinfo", json_mountinfo_line);
    report_proc_lines("cgroups", "/proc/self/cgroup", json_cgroup_line);

    json_key("errors");
    json_object_begin();
    for (int i = 0; i < report_error_count; i++) {
        json_key(report_errors[i].key);
        json_string(report_errors[i].message);
    }
    json_object_end();
    json_object_end();
    putchar('\n');
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* The other verbs.                                                                       */
/* ------------------------------------------------------------------------------------- */

/* Print "probe: VERB ARG: reason" (ARG may be NULL) and return 1, the failing status. */
static int fail(const char *verb, const char *arg, int error)
{
    fprintf(stderr, "probe: %s%s%s: %s\n", verb, arg ? " " : "", arg ? arg : "",
            strerror(error));
    return 1;
}

/* note TEXT: does nothing; lets a config carry arbitrary arguments that the report shows. */
static int verb_note(char **args)
{
    (void)args;
    return 0;
}

static int verb_hostname(char **args)
{
    (void)args;
    char buf[256];
    if (gethostname(buf, sizeof(buf)) != 0)
        return fail("hostname", NULL, errno);
    buf[sizeof(buf) - 1] = '\0';
    printf("%s\n", buf);
    return 0;
}

/* Parse a decimal number of seconds; 0 or -1 if it is not one (negative, NaN, huge...). */
static int parse_seconds(const char *text, struct timespec *ts)
{
    char *end;
    errno = 0;
    double seconds = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !(seconds >= 0 && seconds < 1e9))
        return -1;
    ts->tv_sec = (time_t)seconds;
    ts->tv_nsec = (long)((seconds - (double)ts->tv_sec) * 1e9 + 0.5);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
    return 0;
}

static int check_sleep(char **args)
{
    struct timespec ts;
    return parse_seconds(args[0], &ts);
}

static int verb_sleep(char **args)
{
    struct timespec ts;
    parse_seconds(args[0], &ts);
    while (nanosleep(&ts, &ts) != 0) {
        if (errno != EINTR)
            return fail("sleep", args[0], errno);
    }
    return 0;
}

/* Parse an exit status 0..255; -1 if it is not one. */
static int parse_status(const char *text)
{
    char *end;
    errno = 0;
    long status = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || status < 0 || status > 255)
        return -1;
    return (int)status;
}

static int check_exit(char **args) { return parse_status(args[0]) < 0 ? -1 : 0; }

static int verb_exit(char **args)
{
    fflush(stdout);
    exit(parse_status(args[0]));
}

/* --- pause ------------------------------------------------------------------------- */

static const struct {
    int number;
    const char *name;
} signal_table[] = {
    {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},       {SIGQUIT, "SIGQUIT"},
    {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"},     {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},       {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"},     {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"},     {SIGTERM, "SIGTERM"},
#ifdef SIGSTKFLT
    {SIGSTKFLT, "SIGSTKFLT"},
#endif
    {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"},     {SIGSTOP, "SIGSTOP"},
    {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"},     {SIGTTOU, "SIGTTOU"},
    {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"},     {SIGXFSZ, "SIGXFSZ"},
    {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},     {SIGWINCH, "SIGWINCH"},
    {SIGIO, "SIGIO"},         {SIGPWR, "SIGPWR"},       {SIGSYS, "SIGSYS"},
};

static void print_signal_name(int sig)
{
    for (size_t i = 0; i < ARRAY_LEN(signal_table); i++)
        if (signal_table[i].number == sig) {
            printf("%s\n", signal_table[i].name);
            return;
        }
    printf("SIG%d\n", sig);
}

#define FIRST_SIGNAL 1
#define LAST_SIGNAL 31

/* The signals `pause` waits for: all catchable ones but SIGCHLD (a reaped orphan is no news). */
static int pause_catches(int sig) { return sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD; }

static volatile sig_atomic_t caught_signal;
static sigset_t pause_signals;     /* the signals above */
static sigset_t mask_before_pause; /* the signal mask the probe started with */
static struct sigaction actions_before_pause[LAST_SIGNAL + 1];
static int pause_armed;

static void on_signal(int sig) { caught_signal = sig; }

/*
 * Block the pause signals and install the handler.  Called at the start when the sequence
 * holds a `pause`, so no signal is lost (or kills the probe) before the `pause` runs.
 * While the handler runs, all pause signals stay blocked: one signal per `pause`.
 */
static void arm_pause(void)
{
    struct sigaction action;

    sigemptyset(&pause_signals);
    for (int sig = FIRST_SIGNAL; sig <= LAST_SIGNAL; sig++)
        if (pause_catches(sig))
            sigaddset(&pause_signals, sig);
    sigprocmask(SIG_BLOCK, &pause_signals, &mask_before_pause);

    memset(&action, 0, sizeof(action));
    action.sa_handler = on_signal;
    action.sa_mask = pause_signals;
    for (int sig = FIRST_SIGNAL; sig <= LAST_SIGNAL; sig++)
        if (pause_catches(sig))
            sigaction(sig, &action, &actions_before_pause[sig]);
    pause_armed = 1;
}

/* Give the signals back their old dispositions, then unblock them. */
static void disarm_pause(void)
{
    if (!pause_armed)
        return;
    for (int sig = FIRST_SIGNAL; sig <= LAST_SIGNAL; sig++)
        if (pause_catches(sig))
            sigaction(sig, &actions_before_pause[sig], NULL);
    sigprocmask(SIG_SETMASK, &mask_before_pause, NULL);
    pause_armed = 0;
}

static int verb_pause(char **args)
{
    (void)args;
    sigset_t waiting = mask_before_pause;
    for (int sig = FIRST_SIGNAL; sig <= LAST_SIGNAL; sig++)
        if (pause_catches(sig))
            sigdelset(&waiting, sig);

    caught_signal = 0;
    while (!caught_signal)
        sigsuspend(&waiting); /* returns after one handler ran, pause signals blocked again */
    print_signal_name(caught_signal);
    return 0;
}

/* --- files ----------------------------------------------------------------------------- */

static int verb_cat(char **args)
{
    int fd = open(args[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail("cat", args[0], errno);
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int error = errno;
            close(fd);
            return fail("cat", args[0], error);
        }
        if (n == 0)
            break;
        fwrite(buf, 1, (size_t)n, stdout);
    }
    close(fd);
    return 0;
}

static int verb_write(char **args)
{
    int fd = open(args[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail("write", args[0], errno);
    const char *text = args[1];
    size_t left = strlen(text);
    while (left > 0) {
        ssize_t n = write(fd, text, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int error = errno;
            close(fd);
            return fail("write", args[0], error);
        }
        text += n;
        left -= (size_t)n;
    }
    if (close(fd) != 0)
        return fail("write", args[0], errno);
    return 0;
}

static int verb_ls(char **args)
{
    DIR *dir = opendir(args[0]);
    if (!dir)
        return fail("ls", args[0], errno);
    char **names = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *entry;
    errno = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            names = xrealloc(names, capacity * sizeof(names[0]));
        }
        names[count++] = xstrdup(entry->d_name);
        errno = 0;
    }
    int error = errno;
    closedir(dir);
    if (error == 0) {
        qsort(names, count, sizeof(names[0]), compare_strings);
        for (size_t i = 0; i < count; i++)
            printf("%s\n", names[i]);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return error ? fail("ls", args[0], error) : 0;
}

static const char *file_type(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    default: return "unknown";
    }
}

static int verb_stat(char **args)
{
    struct stat st;
    if (lstat(args[0], &st) != 0)
        return fail("stat", args[0], errno);
    json_object_begin();
    json_key("path");
    json_string(args[0]);
    json_key("type");
    json_string(file_type(st.st_mode));
    json_key("mode");
    json_int(st.st_mode & 07777);
    json_key("uid");
    json_int(st.st_uid);
    json_key("gid");
    json_int(st.st_gid);
    json_key("size");
    json_int(st.st_size);
    json_key("rdev_major");
    json_uint(major(st.st_rdev));
    json_key("rdev_minor");
    json_uint(minor(st.st_rdev));
    json_key("ino");
    json_uint(st.st_ino);
    json_key("dev");
    json_uint(st.st_dev);
    json_object_end();
    putchar('\n');
    return 0;
}

/* --- what a mount lets a process do (exec, set-id, access times, reads) --------------- */

static int verb_exec(char **args)
{
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0)
        return fail("exec", args[0], errno);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return fail("exec", args[0], errno);
    if (pid == 0) {
        char *argv[] = {args[0], args[1], NULL};
        execv(args[0], argv);
        int error = errno;
        (void)!write(report[1], &error, sizeof(error));
        _exit(127);
    }
    close(report[1]);
    int error = 0;
    ssize_t n = read(report[0], &error, sizeof(error));
    close(report[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof(error))
        return fail("exec", args[0], error);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "probe: exec %s: the child ended with status %d\n", args[0], status);
        return 1;
    }
    return 0;
}

static int verb_euid(char **args)
{
    (void)args;
    printf("euid %d\n", (int)geteuid());
    return 0;
}

static int verb_times(char **args)
{
    struct stat st;
    if (lstat(args[0], &st) != 0)
        return fail("times", args[0], errno);
    json_object_begin();
    json_key("path");
    json_string(args[0]);
    json_key("atime");
    json_int(st.st_atim.tv_sec);
    json_key("mtime");
    json_int(st.st_mtim.tv_sec);
    json_object_end();
    putchar('\n');
    return 0;
}

static int check_count(char **args)
{
    char *end;
    errno = 0;
    long v = strtol(args[1], &end, 10);
    return (errno || *end || end == args[1] || v < 0 || v > (1L << 30)) ? -1 : 0;
}

static int verb_readn(char **args)
{
    long max = strtol(args[1], NULL, 10), total = 0;
    int fd = open(args[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail("readn", args[0], errno);
    char buf[4096];
    while (total < max) {
        size_t want = (size_t)(max - total) < sizeof(buf) ? (size_t)(max - total) : sizeof(buf);
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int error = errno;
            close(fd);
            return fail("readn", args[0], error);
        }
        if (n == 0)
            break;
        total += n;
    }
    close(fd);
    printf("%ld\n", total);
    return 0;
}

/* try: a marker, handled in main: the failure of the verb after it does not end the run. */
static int verb_try(char **args)
{
    (void)args;
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* Scheduling, I/O priority, memory policy, personality (config.md "Linux Process",        */
/* config-linux.md "Memory policy", "Personality"): what the kernel says of this process.  */
/* ------------------------------------------------------------------------------------- */

struct probe_sched_attr { /* struct sched_attr of sched_getattr(2), version 1 (56 bytes) */
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

static void json_flag_names(uint64_t bits, const char *const *names, size_t count)
{
    json_array_begin();
    for (size_t i = 0; i < count; i++)
        if (names[i] && (bits & (1ULL << i)))
            json_string(names[i]);
    json_array_end();
}

static int verb_sched(char **args)
{
    static const char *const policies[] = {"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH",
                                           "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE"};
    static const char *const flags[] = {"SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",
                                        "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_KEEP_POLICY",
                                        "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
                                        "SCHED_FLAG_UTIL_CLAMP_MAX"};
    struct probe_sched_attr a;
    (void)args;
    memset(&a, 0, sizeof(a));
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0)
        return fail("sched", NULL, errno);
    json_object_begin();
    json_key("policy");
    if (a.sched_policy < ARRAY_LEN(policies))
        json_string(policies[a.sched_policy]);
    else
        json_int(a.sched_policy);
    json_key("flags");
    json_flag_names(a.sched_flags, flags, ARRAY_LEN(flags));
    json_key("nice");
    json_int(a.sched_nice);
    json_key("priority");
    json_uint(a.sched_priority);
    json_key("runtime");
    json_uint(a.sched_runtime);
    json_key("deadline");
    json_uint(a.sched_deadline);
    json_key("period");
    json_uint(a.sched_period);
    json_object_end();
    putchar('\n');
    return 0;
}

static int verb_ioprio(char **args)
{
    static const char *const classes[] = {"IOPRIO_CLASS_NONE", "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
                                          "IOPRIO_CLASS_IDLE"};
    (void)args;
    long prio = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    if (prio < 0)
        return fail("ioprio", NULL, errno);
    unsigned long cls = (unsigned long)prio >> 13;
    json_object_begin();
    json_key("class");
    if (cls < ARRAY_LEN(classes))
        json_string(classes[cls]);
    else
        json_int((long long)cls);
    json_key("priority");
    json_int(prio & 0xff);
    json_object_end();
    putchar('\n');
    return 0;
}

static int verb_mempolicy(char **args)
{
    static const char *const modes[] = {"MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND",
                                        "MPOL_INTERLEAVE", "MPOL_LOCAL", "MPOL_PREFERRED_MANY",
                                        "MPOL_WEIGHTED_INTERLEAVE"};
    static const char *const flags[16] = {[13] = "MPOL_F_NUMA_BALANCING",
                                          [14] = "MPOL_F_RELATIVE_NODES",
                                          [15] = "MPOL_F_STATIC_NODES"};
    enum { WORDS = 16, BITS = 8 * sizeof(unsigned long) };
    unsigned long mask[WORDS];
    int mode = 0;
    (void)args;
    memset(mask, 0, sizeof(mask));
    if (syscall(SYS_get_mempolicy, &mode, mask, (unsigned long)(WORDS * BITS), NULL, 0UL) != 0)
        return fail("mempolicy", NULL, errno);
    unsigned base = (unsigned)mode & 0x1fff;
    json_object_begin();
    json_key("mode");
    if (base < ARRAY_LEN(modes))
        json_string(modes[base]);
    else
        json_int(base);
    json_key("flags");
    json_flag_names((unsigned)mode & ~0x1fffU, flags, ARRAY_LEN(flags));
    json_key("nodes");
    json_array_begin();
    for (unsigned n = 0; n < WORDS * BITS; n++)
        if (mask[n / BITS] & (1UL << (n % BITS)))
            json_int(n);
    json_array_end();
    json_object_end();
    putchar('\n');
    return 0;
}

static int verb_personality(char **args)
{
    struct utsname u;
    (void)args;
    long persona = syscall(SYS_personality, 0xffffffffUL);
    if (persona < 0)
        return fail("personality", NULL, errno);
    if (uname(&u) != 0)
        return fail("personality", "(uname)", errno);
    json_object_begin();
    json_key("persona");
    json_int(persona);
    json_key("machine");
    json_string(u.machine);
    json_object_end();
    putchar('\n');
    return 0;
}

/* ------------------------------------------------------------------------------------- */
/* The verb table and main.                                                               */
/* ------------------------------------------------------------------------------------- */

static const struct verb {
    const char *name;
    int nargs;
    int (*check)(char **args); /* validates the arguments before anything runs; may be NULL */
    int (*run)(char **args);   /* 0, or the exit status of a failure (message printed) */
    const char *usage;
} verbs[] = {
    {"report", 0, NULL, verb_report, "report            print what the process sees, as JSON"},
    {"hostname", 0, NULL, verb_hostname, "hostname          print the hostname"},
    {"sleep", 1, check_sleep, verb_sleep, "sleep SECONDS     sleep (decimal seconds, e.g. 0.25)"},
    {"exit", 1, check_exit, verb_exit, "exit N            exit at once with status N (0..255)"},
    {"pause", 0, NULL, verb_pause, "pause             wait for a signal and print its name"},
    {"cat", 1, NULL, verb_cat, "cat FILE          copy FILE to stdout"},
    {"write", 2, NULL, verb_write, "write FILE TEXT   create/truncate FILE and write TEXT"},
    {"ls", 1, NULL, verb_ls, "ls DIR            print the names in DIR, sorted"},
    {"stat", 1, NULL, verb_stat, "stat PATH         print lstat(PATH) as JSON"},
    {"note", 1, NULL, verb_note, "note TEXT         do nothing (carries TEXT in argv)"},
    {"sched", 0, NULL, verb_sched, "sched             print the scheduling attributes as JSON"},
    {"ioprio", 0, NULL, verb_ioprio, "ioprio            print the I/O priority as JSON"},
    {"mempolicy", 0, NULL, verb_mempolicy, "mempolicy         print the NUMA memory policy as JSON"},
    {"personality", 0, NULL, verb_personality, "personality       print the execution domain as JSON"},
    {"exec", 2, NULL, verb_exec, "exec PATH VERB    run PATH VERB in a child and wait for it"},
    {"euid", 0, NULL, verb_euid, "euid              print the effective uid"},
    {"times", 1, NULL, verb_times, "times PATH        print atime and mtime of PATH as JSON"},
    {"readn", 2, check_count, verb_readn, "readn PATH MAX    read up to MAX bytes, print how many"},
    {"try", 0, NULL, verb_try, "try VERB ...      run VERB; its failure does not end the run"},
};

static int usage(void)
{
    fputs("usage: probe VERB [ARGS...] [VERB [ARGS...]]...\nverbs:\n", stderr);
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        fprintf(stderr, "  %s\n", verbs[i].usage);
    return 2;
}

static const struct verb *find_verb(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

int main(int argc, char **argv)
{
    probe_argc = argc;
    probe_argv = argv;
    if (argc < 2)
        return usage();

    /* First pass: check the whole sequence, so a typo at the end does not run half of it. */
    int pauses = 0;
    for (int i = 1; i < argc;) {
        const struct verb *verb = find_verb(argv[i]);
        if (!verb) {
            fprintf(stderr, "probe: unknown verb '%s'\n", argv[i]);
            return usage();
        }
        if (i + verb->nargs >= argc) {
            fprintf(stderr, "probe: %s needs %d argument%s\n", verb->name, verb->nargs,
                    verb->nargs == 1 ? "" : "s");
            return usage();
        }
        if (verb->check && verb->check(&argv[i + 1]) != 0) {
            fprintf(stderr, "probe: %s: bad argument '%s'\n", verb->name, argv[i + 1]);
            return usage();
        }
        if (verb->run == verb_pause)
            pauses++;
        if (verb->run == verb_try && (i + 1 >= argc || strcmp(argv[i + 1], "try") == 0)) {
            fprintf(stderr, "probe: try needs a verb after it\n");
            return usage();
        }
        i += 1 + verb->nargs;
    }

    if (pauses > 0)
        arm_pause();

    /* Second pass: run the verbs. */
    int trying = 0;
    for (int i = 1; i < argc;) {
        const struct verb *verb = find_verb(argv[i]);
        int status = verb->run(&argv[i + 1]);
        if (fflush(stdout) != 0)
            status = fail(verb->name, "(writing stdout)", errno);
        if (trying)
            status = trying = 0;
        else if (verb->run == verb_try)
            trying = 1;
        if (status != 0)
            return status;
        if (verb->run == verb_pause && --pauses == 0)
            disarm_pause();
        i += 1 + verb->nargs;
    }
    return 0;
}
