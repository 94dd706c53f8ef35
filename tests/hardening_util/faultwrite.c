/*
 * LD_PRELOAD fault injector for tests/hardening_faults.rs: fails writes that the process
 * makes to files under HOIST_FAULT_ROOT (the hoist store), and nothing else: strace 6.1 can
 * only count a syscall per thread, and injecting into every `write` fails tokio's eventfd
 * wake-ups and stderr first, which no full or failing disk does.
 *
 *   HOIST_FAULT_ROOT   store root (canonical path)
 *   HOIST_FAULT_ERRNO  ENOSPC or EIO
 *   HOIST_FAULT_WHEN   N: fail the Nth store write; N+: the Nth and every later one;
 *                      0: fail none, log each (`seen CALL #N PATH`)
 *   HOIST_FAULT_LOG    file that gets `failed CALL #N PATH` per failed write and `total N`
 *                      at exit
 *
 * Store writes are counted over the whole process (all threads) across write, pwrite64,
 * writev, pwritev and copy_file_range (its destination). LD_PRELOAD is removed from the
 * environment at load, so the runtime and `cp` that hoist starts run unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char store[4096];
static size_t store_len;
static int fail_errno = ENOSPC;
static long when;
static int every_later;
static int log_fd = -1;
static long count;

static void log_line(const char *line, size_t len) {
    if (log_fd >= 0) {
        /* A raw syscall: never through the interposed write. */
        (void)syscall(SYS_write, log_fd, line, len);
    }
}

__attribute__((constructor)) static void faultwrite_init(void) {
    const char *r = getenv("HOIST_FAULT_ROOT");
    const char *e = getenv("HOIST_FAULT_ERRNO");
    const char *w = getenv("HOIST_FAULT_WHEN");
    const char *l = getenv("HOIST_FAULT_LOG");
    if (r && strlen(r) + 2 < sizeof store) {
        strcpy(store, r);
        store_len = strlen(store);
    }
    if (e && strcmp(e, "EIO") == 0) {
        fail_errno = EIO;
    }
    if (w) {
        char *end = NULL;
        when = strtol(w, &end, 10);
        every_later = end && *end == '+';
    }
    if (l) {
        log_fd = open(l, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    }
    unsetenv("LD_PRELOAD");
}

__attribute__((destructor)) static void faultwrite_fini(void) {
    char line[64];
    int n = snprintf(line, sizeof line, "total %ld\n", __atomic_load_n(&count, __ATOMIC_SEQ_CST));
    if (n > 0) {
        log_line(line, (size_t)n);
    }
}

/* True (errno set) when this write to `fd` is to fail. */
static int inject(int fd, const char *call) {
    char link[64];
    char path[4096];
    if (store_len == 0) {
        return 0;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) {
        return 0;
    }
    path[n] = '\0';
    if ((size_t)n <= store_len || strncmp(path, store, store_len) != 0 || path[store_len] != '/') {
        return 0;
    }
    long k = __atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST);
    int fail = when > 0 && (k == when || (k > when && every_later));
    if (fail || when <= 0) {
        char line[4200];
        int len = snprintf(line, sizeof line, "%s %s #%ld %s\n", fail ? "failed" : "seen", call,
                           k, path);
        if (len > 0) {
            log_line(line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        }
    }
    if (!fail) {
        return 0;
    }
    errno = fail_errno;
    return 1;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*cfr_fn)(int, off_t *, int, off_t *, size_t, unsigned int);

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name, type) \
    static type real; \
    if (!real) { \
        real = (type)dlsym(RTLD_NEXT, name); \
    }

ssize_t write(int fd, const void *buf, size_t len) {
    REAL("write", write_fn);
    if (inject(fd, "write")) {
        return -1;
    }
    return real(fd, buf, len);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) {
    REAL("pwrite64", pwrite_fn);
    if (inject(fd, "pwrite64")) {
        return -1;
    }
    return real(fd, buf, len, off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) {
    return pwrite64(fd, buf, len, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
    REAL("writev", writev_fn);
    if (inject(fd, "writev")) {
        return -1;
    }
    return real(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off) {
    REAL("pwritev", pwritev_fn);
    if (inject(fd, "pwritev")) {
        return -1;
    }
    return real(fd, iov, n, off);
}

ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len,
                        unsigned int flags) {
    REAL("copy_file_range", cfr_fn);
    if (inject(out, "copy_file_range")) {
        return -1;
    }
    return real(in, in_off, out, out_off, len, flags);
}
