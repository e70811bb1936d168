/* What a vCPU thread's seccomp filter adds to each exit, measured on the
 * host without KVM: one KVM_RUN ioctl per exit goes through the filter,
 * so the cost is that of an ioctl(KVM_RUN) on a thread with the vcpu list
 * against one on a thread without (on a descriptor that is not a vCPU:
 * the kernel answers ENOTTY at once, so the filter is most of what is
 * timed).  Prints ns per call, medians of interleaved rounds, and the
 * ratio.  bench/exit.sh runs it beside the lab's exit loop.
 *
 * usage: bench-seccomp-filter [ROUNDS] [CALLS] */
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vmm/seccomp.h"

struct round {
	long calls;
	bool filtered;
	double ns;
};

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void *timed_calls(void *arg)
{
	struct round *r = arg;
	struct err *e = NULL;
	double t0;

	if (r->filtered && vmm_seccomp_install(VMM_THREAD_VCPU, &e) < 0) {
		fprintf(stderr, "bench-seccomp-filter: %s\n", e->msg);
		exit(1);
	}
	t0 = now_ns();
	for (long i = 0; i < r->calls; i++)
		(void)ioctl(0, KVM_RUN, 0);
	r->ns = (now_ns() - t0) / (double)r->calls;
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 11;
	long calls = argc > 2 ? atol(argv[2]) : 1000000;
	double on[64], off[64];
	struct err *e = NULL;

	if (rounds < 1 || rounds > 64 || calls < 1) {
		fprintf(stderr, "usage: bench-seccomp-filter [ROUNDS 1-64] [CALLS]\n");
		return 2;
	}
	if (vmm_seccomp_init(VMM_SECCOMP_ON, &e) < 0) {
		fprintf(stderr, "bench-seccomp-filter: %s\n", e->msg);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		for (int k = 0; k < 2; k++) {
			/* alternate which goes first */
			struct round r = {calls, (i + k) % 2 == 0, 0};
			pthread_t t;

			pthread_create(&t, NULL, timed_calls, &r);
			pthread_join(t, NULL);
			(r.filtered ? on : off)[i] = r.ns;
		}
	}
	qsort(on, (size_t)rounds, sizeof(double), cmp_double);
	qsort(off, (size_t)rounds, sizeof(double), cmp_double);
	printf("\nioctl(KVM_RUN) on a vCPU thread, %ld calls a round, %d rounds (host, no KVM)\n", calls, rounds);
	printf("%-22s%18s%18s%12s\n", "", "seccomp on", "seccomp off", "ratio");
	printf("%-22s%14.1f ns %14.1f ns %11.2fx\n", "per call", on[rounds / 2], off[rounds / 2],
	       on[rounds / 2] / off[rounds / 2]);
	printf("(medians; the filter adds %.1f ns to each exit)\n", on[rounds / 2] - off[rounds / 2]);
	return 0;
}
