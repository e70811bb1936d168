/* Threads of the VMM, started with a small stack. */
#ifndef CASULO_COMMON_THREAD_H
#define CASULO_COMMON_THREAD_H

#include <pthread.h>

/* Stack size of the threads that thread_start() makes.  The default is
 * 8 MiB, and with transparent huge pages set to "always" (Debian's generic
 * kernel) the first touch of such a stack can be backed by a whole 2 MiB
 * page: one vCPU thread then costs the VMM 2 MiB of RSS.  A stack smaller
 * than 2 MiB never gets a huge page.  The VMM's threads run flat loops
 * (KVM_RUN and exit handling, device queues, the migration sender) that
 * use a few KiB; sanitizer builds need more. */
#if defined(__SANITIZE_ADDRESS__)
#define THREAD_STACK_SIZE (4u << 20)
#else
#define THREAD_STACK_SIZE (512u << 10)
#endif

/* pthread_create() with a THREAD_STACK_SIZE stack: 0 or an errno value. */
int thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
