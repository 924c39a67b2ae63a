/* SPDX-License-Identifier: MIT */
/*
 * no-uring PROGRAM [ARGS...]: run PROGRAM with io_uring forbidden, as a
 * container's seccomp profile forbids it: io_uring_setup, io_uring_enter
 * and io_uring_register fail with EPERM, every other syscall works.  The
 * filter is inherited across fork and exec, so the whole process tree
 * under PROGRAM sees the same.
 */
#include <config.h>

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH	AUDIT_ARCH_X86_64
/* x32 calls arrive as x86_64 ones with this bit set; block theirs too. */
#define SYSCALL_BITS	(~0x40000000u)
#elif defined(__aarch64__)
#define NATIVE_ARCH	AUDIT_ARCH_AARCH64
#define SYSCALL_BITS	(~0u)
#endif

/* Unified numbers since Linux 5.1, the same on every architecture. */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup	425
#define __NR_io_uring_enter	426
#define __NR_io_uring_register	427
#endif

#define DENY(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

int main(int argc, char **argv)
{
#ifdef NATIVE_ARCH
	struct sock_filter filter[] = {
		/*
		 * Syscall numbers mean different things to another ABI (a
		 * 32-bit program run from here): rather than guess, kill it.
		 */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, SYSCALL_BITS),
		DENY(__NR_io_uring_setup),
		DENY(__NR_io_uring_enter),
		DENY(__NR_io_uring_register),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};
#endif

	if (argc < 2) {
		fprintf(stderr, "usage: no-uring PROGRAM [ARGS...]\n");
		return 2;
	}
#ifndef NATIVE_ARCH
	fprintf(stderr, "no-uring: this architecture is not supported\n");
	return 126;
#else
	/* Without privileges a filter may only be set with no_new_privs. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		fprintf(stderr, "no-uring: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
		return 126;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0)) {
		fprintf(stderr, "no-uring: installing the seccomp filter: %s\n",
			strerror(errno));
		return 126;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no-uring: %s: %s\n", argv[1], strerror(errno));
	return errno == ENOENT ? 127 : 126;
#endif
}
