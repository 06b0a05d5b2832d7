/* A static probe run inside containers by tests/tests/seccomp.rs: each
 * argument names a system call to try; it prints "NAME=ERRNO" (0 when the
 * call succeeded). The calls are made raw (syscall(2)) so that no libc
 * wrapper or fallback hides what the kernel and the filter answered. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long result(long rc) { return rc == -1 ? errno : 0; }

/* A clone with these flags; the child exits at once. */
static long try_clone(unsigned long flags) {
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return errno;
	waitpid((pid_t)pid, NULL, 0);
	return 0;
}

/* TIOCSTI (or TIOCLINUX) on a terminal that is the caller's controlling
 * one, so that only seccomp can refuse it: a new pty, in a new session.
 * `high` sets bits above the 32 the kernel reads of the command. */
static long try_tty_ioctl(unsigned long cmd, int high) {
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		long err = 0;
		int master = posix_openpt(O_RDWR | O_NOCTTY);
		if (master < 0 || grantpt(master) || unlockpt(master) || setsid() < 0) {
			err = 1000 + errno;
		} else {
			int slave = open(ptsname(master), O_RDWR);
			char c = '\n';
			unsigned long full = cmd | (high ? 0x100000000UL : 0);
			if (slave < 0)
				err = 2000 + errno;
			else if (ioctl(slave, TIOCSCTTY, 0) != 0 && errno != EPERM)
				err = 3000 + errno;
			else
				err = result(syscall(SYS_ioctl, slave, full, &c));
		}
		(void)!write(fds[1], &err, sizeof err);
		_exit(0);
	}
	long err = -1;
	(void)!read(fds[0], &err, sizeof err);
	waitpid(pid, NULL, 0);
	return err;
}

int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *op = argv[i];
		long err;
		errno = 0;
		if (!strcmp(op, "unshare-user"))
			err = result(syscall(SYS_unshare, CLONE_NEWUSER));
		else if (!strcmp(op, "unshare-net"))
			err = result(syscall(SYS_unshare, CLONE_NEWNET));
		else if (!strcmp(op, "clone-newns"))
			err = try_clone(CLONE_NEWNS);
		else if (!strcmp(op, "clone-plain"))
			err = try_clone(0);
		else if (!strcmp(op, "clone3"))
			err = result(syscall(SYS_clone3, NULL, 0));
		else if (!strcmp(op, "keyctl"))
			/* KEYCTL_GET_KEYRING_ID of the session keyring, no create. */
			err = result(syscall(SYS_keyctl, 0, -3, 0));
		else if (!strcmp(op, "nr1000"))
			err = result(syscall(1000, 0, 0, 0, 0, 0));
		else if (!strcmp(op, "open_tree_attr"))
			/* Linux 6.15 (467), newer than every name in ctr's profile. */
			err = result(syscall(467, -1, NULL, 0, NULL, 0));
		else if (!strcmp(op, "tiocsti"))
			err = try_tty_ioctl(TIOCSTI, 0);
		else if (!strcmp(op, "tiocsti-high"))
			err = try_tty_ioctl(TIOCSTI, 1);
		else if (!strcmp(op, "tioclinux"))
			err = try_tty_ioctl(TIOCLINUX, 0);
		else {
			fprintf(stderr, "probe: unknown op %s\n", op);
			return 2;
		}
		printf("%s=%ld\n", op, err);
	}
	return 0;
}
