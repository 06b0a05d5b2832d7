/* A hostile program for the container-boundary tests (tests/tests/cve.rs
 * and boundary.rs), built static at test time and bound into containers.
 * Each mode prints one line of `key=value` results on stdout.
 *
 *   tiocsti            TIOCSTI "INJECTED\n" into fds 0, 1, 2 and /dev/tty
 *   exe-scan SECS      loop over /proc/N/exe for SECS seconds, opening every
 *                      executable that is not ours nor /bin/busybox: O_PATH,
 *                      O_RDONLY, then O_RDONLY and O_WRONLY via /proc/self/fd
 *   fds                list our open descriptors (without the listing's own)
 *   cwd                is the working directory beneath our root?
 *   swap A B SECS      exchange the names A and B (renameat2 RENAME_EXCHANGE)
 *                      as fast as possible for SECS seconds
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *result(int rc) { return rc == 0 ? "OK" : strerrorname_np(errno); }

static int tiocsti(int fd) {
    const char *s = "INJECTED\n";
    for (; *s; s++)
        if (ioctl(fd, TIOCSTI, s) != 0) return -1;
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int same(const struct stat *a, const struct stat *b) { return a->st_dev == b->st_dev && a->st_ino == b->st_ino; }

static int exe_scan(double seconds) {
    struct stat self, busybox;
    if (stat("/proc/self/exe", &self) != 0) return 2;
    if (stat("/bin/busybox", &busybox) != 0) memset(&busybox, 0, sizeof busybox);
    long scans = 0, ctr_seen = 0, denied = 0, opened = 0;
    char first[256] = "";
    pid_t me = getpid();
    double end = now() + seconds;
    while (now() < end) {
        DIR *proc = opendir("/proc");
        if (!proc) return 2;
        struct dirent *e;
        while ((e = readdir(proc))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == me) continue;
            char path[64], comm[32] = "";
            snprintf(path, sizeof path, "/proc/%d/comm", pid);
            int c = open(path, O_RDONLY);
            if (c >= 0) {
                ssize_t n = read(c, comm, sizeof comm - 1);
                comm[n > 0 ? n : 0] = 0;
                close(c);
            }
            if (strcmp(comm, "ctr-init\n") == 0) ctr_seen++;
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_PATH);
            if (fd < 0) {
                if (errno == EACCES || errno == EPERM) denied++;
                continue;
            }
            struct stat st;
            if (fstat(fd, &st) != 0 || same(&st, &self) || same(&st, &busybox)) {
                close(fd);
                continue;
            }
            /* A foreign executable: every way in counts. */
            char via[64];
            snprintf(via, sizeof via, "/proc/self/fd/%d", fd);
            int ways = 1, r;
            if ((r = open(path, O_RDONLY)) >= 0) { ways++; close(r); }
            if ((r = open(via, O_RDONLY)) >= 0) { ways++; close(r); }
            if ((r = open(via, O_WRONLY)) >= 0) { ways++; close(r); }
            opened += ways;
            if (!first[0]) snprintf(first, sizeof first, "pid%d:%s:dev%lu:ino%lu:ways%d", pid, comm[0] ? strtok(comm, "\n") : "?", (unsigned long)st.st_dev, (unsigned long)st.st_ino, ways);
            close(fd);
        }
        closedir(proc);
        scans++;
    }
    printf("exe-scan: scans=%ld ctr_seen=%ld denied=%ld opened=%ld first=%s\n", scans, ctr_seen, denied, opened, first[0] ? first : "none");
    return 0;
}

static int fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 2;
    int own = dirfd(d);
    struct dirent *e;
    printf("fds:");
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == own) continue;
        char path[300], target[512];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        printf(" %s=%s", e->d_name, target);
    }
    printf("\n");
    return 0;
}

static int cwd(void) {
    struct stat root, here, up;
    if (stat("/", &root) != 0) return 2;
    int dir = open(".", O_PATH | O_DIRECTORY);
    for (int i = 0; i < 4096 && dir >= 0; i++) {
        if (fstat(dir, &here) != 0) return 2;
        if (same(&here, &root)) { printf("cwd: inside\n"); return 0; }
        int parent = openat(dir, "..", O_PATH | O_DIRECTORY);
        if (parent < 0 || fstat(parent, &up) != 0) return 2;
        close(dir);
        if (same(&up, &here)) break; /* the real root, and never ours */
        dir = parent;
    }
    printf("cwd: outside\n");
    return 0;
}

static int swap(const char *a, const char *b, double seconds) {
    long n = 0;
    double end = now() + seconds;
    while (now() < end) {
        if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */) != 0) {
            printf("swap: %s\n", strerrorname_np(errno));
            return 1;
        }
        n++;
    }
    printf("swap: swaps=%ld\n", n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "tiocsti") == 0) {
        printf("tiocsti:");
        for (int fd = 0; fd <= 2; fd++) printf(" fd%d=%s", fd, result(tiocsti(fd)));
        int tty = open("/dev/tty", O_RDWR);
        if (tty < 0) printf(" devtty=open:%s", strerrorname_np(errno));
        else printf(" devtty=%s", result(tiocsti(tty)));
        printf("\n");
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "exe-scan") == 0) return exe_scan(atof(argv[2]));
    if (argc >= 2 && strcmp(argv[1], "fds") == 0) return fds();
    if (argc >= 2 && strcmp(argv[1], "cwd") == 0) return cwd();
    if (argc >= 5 && strcmp(argv[1], "swap") == 0) return swap(argv[2], argv[3], atof(argv[4]));
    fprintf(stderr, "usage: attacker tiocsti|exe-scan SECS|fds|cwd|swap A B SECS\n");
    return 2;
}
