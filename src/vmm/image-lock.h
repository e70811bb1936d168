/*
 * The locks a VM holds on its disk images: an open file description lock
 * on the whole image, as QEMU takes one, shared for a read-only disk and
 * exclusive otherwise, so that two writers (two --disk on one image, two
 * VMMs) cannot corrupt it.  Each disk owns its struct image_lock and puts
 * it on its VM's list (vm->image_locks), so that a live migration can hand
 * the locks over: the source releases them once it is paused, before its
 * last state goes; the destination, which opened the images without them, takes
 * them before it answers "running"; a source whose destination failed
 * takes them back before it resumes.
 */
#ifndef CASULO_VMM_IMAGE_LOCK_H
#define CASULO_VMM_IMAGE_LOCK_H

#include <stdbool.h>

#include "common/err.h"
#include "common/macro.h"

struct image_lock {
	int fd;		  /* the image's descriptor (its owner's) */
	const char *path; /* for messages (its owner's) */
	bool exclusive;	  /* a writer's lock; a reader's is shared */
	bool held;
	struct image_lock *next;
};

/* Take l's lock: "disk 'PATH': in use: ..." (EBUSY) when another
 * descriptor holds a conflicting one. */
int image_lock_take(struct image_lock *l, struct err **e) MUST_CHECK;
void image_lock_release(struct image_lock *l);

void image_locks_add(struct image_lock **list, struct image_lock *l);
void image_locks_remove(struct image_lock **list, struct image_lock *l);
/* Every lock of the list; on a failure none of them is held (the callers
 * take a whole VM's locks or fail). */
int image_locks_take(struct image_lock *list, struct err **e) MUST_CHECK;
void image_locks_release(struct image_lock *list);

#endif
