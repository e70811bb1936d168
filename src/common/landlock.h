/* Landlock: a process restricting its own file access to named paths.
 *
 * A ruleset is built from paths and the kind of access each gets, then
 * enforced on the calling thread and every thread and child it starts
 * afterwards (so: before any other thread exists).  Only the rights the
 * running kernel's Landlock ABI knows are handled; a file access right
 * is never given to a directory's entries unless asked (LL_TREE).  The
 * kernel checks at open time: descriptors already open keep working. */
#ifndef CASULO_COMMON_LANDLOCK_H
#define CASULO_COMMON_LANDLOCK_H

#include <stdbool.h>

#include "common/err.h"

/* What a path is allowed.  On a directory, the rights cover what is
 * beneath it. */
enum landlock_access {
	LL_READ = 1 << 0,    /* read files (and list directories) */
	LL_WRITE = 1 << 1,   /* write and truncate existing files */
	LL_SOCKETS = 1 << 2, /* a directory: bind Unix sockets in it, remove files from it */
	LL_TREE = 1 << 3,    /* a directory: create, rename and remove anything beneath it */
};

struct landlock;

/* The kernel's Landlock ABI version, or 0 when it has none (not built in,
 * not among the active LSMs): errno then says why. */
int landlock_abi(void);

/* A new, empty ruleset: -1 with *e (ENOSYS/EOPNOTSUPP: no Landlock). */
int landlock_new(struct landlock **ll, struct err **e) MUST_CHECK;

/* Allow path the access: -1 with *e naming the path when it cannot be
 * opened; a missing path with optional true is skipped. */
int landlock_allow(struct landlock *ll, const char *path, unsigned access, bool optional, struct err **e) MUST_CHECK;

/* Enforce the ruleset on the calling thread and what it starts later
 * (sets no_new_privs). */
int landlock_enforce(struct landlock *ll, struct err **e) MUST_CHECK;

void landlock_free(struct landlock *ll);

#endif
