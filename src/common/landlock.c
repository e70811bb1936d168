#include "common/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Older headers lack the rights of later ABIs: the values are the kernel's. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

/* The rights that apply to a file (the others are a directory's). */
#define FILE_RIGHTS                                                                                                    \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |                   \
	 LANDLOCK_ACCESS_FS_TRUNCATE)

struct landlock {
	int fd;
	uint64_t handled; /* every right this ABI knows: what is not allowed is denied */
};

static int ll_create_ruleset(const struct landlock_ruleset_attr *attr, size_t size, uint32_t flags)
{
	return (int)syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

int landlock_abi(void)
{
	int v = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : v;
}

/* Every filesystem right of ABI v: v1 has the first 13, v2 adds REFER,
 * v3 TRUNCATE.  Later ABIs' IOCTL_DEV is left out on purpose: seccomp
 * already filters each thread's ioctls by request. */
static uint64_t rights_of_abi(int v)
{
	uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* EXECUTE .. MAKE_SYM */

	if (v >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (v >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return r;
}

int landlock_new(struct landlock **ret, struct err **e)
{
	int v = landlock_abi();
	struct landlock_ruleset_attr attr;
	struct landlock *ll;

	if (v <= 0)
		return err_set(e, errno ? errno : ENOSYS, "landlock");
	ll = calloc(1, sizeof(*ll));
	if (ll == NULL)
		return err_set(e, ENOMEM, "landlock");
	ll->handled = rights_of_abi(v);
	attr = (struct landlock_ruleset_attr){.handled_access_fs = ll->handled};
	ll->fd = ll_create_ruleset(&attr, sizeof(attr), 0);
	if (ll->fd < 0) {
		int err = errno;

		free(ll);
		return err_set(e, err, "landlock: create ruleset");
	}
	*ret = ll;
	return 0;
}

static uint64_t rights_for(unsigned access)
{
	uint64_t r = 0;

	if (access & LL_READ)
		r |= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	if (access & LL_WRITE)
		r |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
	if (access & LL_SOCKETS)
		r |= LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE;
	if (access & LL_TREE)
		r |= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_WRITE_FILE |
		     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		     LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER;
	return r;
}

int landlock_allow(struct landlock *ll, const char *path, unsigned access, bool optional, struct err **e)
{
	struct landlock_path_beneath_attr rule = {.parent_fd = open(path, O_PATH | O_CLOEXEC)};
	struct stat st;
	int r = 0;

	if (rule.parent_fd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		return err_set(e, errno, "landlock: '%s'", path);
	}
	rule.allowed_access = rights_for(access) & ll->handled;
	if (fstat(rule.parent_fd, &st) < 0)
		r = err_set(e, errno, "landlock: '%s'", path);
	else if (!S_ISDIR(st.st_mode))
		rule.allowed_access &= FILE_RIGHTS; /* a file takes no directory right */
	if (r == 0 && rule.allowed_access != 0 &&
	    syscall(SYS_landlock_add_rule, ll->fd, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
		r = err_set(e, errno, "landlock: allow '%s'", path);
	close(rule.parent_fd);
	return r;
}

int landlock_enforce(struct landlock *ll, struct err **e)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_set(e, errno, "landlock: no_new_privs");
	if (syscall(SYS_landlock_restrict_self, ll->fd, 0) < 0)
		return err_set(e, errno, "landlock: restrict");
	return 0;
}

void landlock_free(struct landlock *ll)
{
	if (ll == NULL)
		return;
	close(ll->fd);
	free(ll);
}
