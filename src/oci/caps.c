/*
 * Capabilities and the user switch, in runc's order: drop the bounding
 * set (needs CAP_SETPCAP), keep capabilities across setresuid, set the
 * permitted, effective and inheritable sets, then raise the ambient ones.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/macro.h"
#include "oci/container.h"
#include "oci/util.h"

static int last_cap(void)
{
	static int last = -1;
	char *text = NULL;

	if (last >= 0)
		return last;
	if (read_file("/proc/sys/kernel/cap_last_cap", &text, NULL) == 0) {
		last = atoi(text);
		free(text);
	}
	if (last <= 0)
		last = CAP_LAST_CAP;
	return last;
}

static int set_user(const struct oci_process *p, struct err **e)
{
	if (setgroups(p->user.n_additional_gids, p->user.additional_gids) < 0 &&
	    !(errno == EPERM && p->user.n_additional_gids == 0))
		return err_set(e, errno, "process.user.additionalGids: setgroups");
	if (setresgid(p->user.gid, p->user.gid, p->user.gid) < 0)
		return err_set(e, errno, "process.user.gid %u: setresgid", p->user.gid);
	if (setresuid(p->user.uid, p->user.uid, p->user.uid) < 0)
		return err_set(e, errno, "process.user.uid %u: setresuid", p->user.uid);
	return 0;
}

int caps_apply_user(const struct oci_process *p, bool has_caps, struct err **e)
{
	int last = last_cap(), r;
	cap_t caps;

	if (!has_caps)
		return set_user(p, e);
	for (int cap = 0; cap <= last; cap++) {
		if (p->caps[CAP_SET_BOUNDING] & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return err_set(e, errno, "process.capabilities.bounding: drop %s", cap_to_name(cap));
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return err_set(e, errno, "capabilities: prctl(PR_SET_KEEPCAPS)");
	if ((r = set_user(p, e)) < 0)
		return r;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return err_set(e, errno, "capabilities: prctl(PR_SET_KEEPCAPS)");

	caps = cap_init();
	if (caps == NULL)
		return err_set(e, errno, "capabilities: cap_init");
	for (int cap = 0; cap <= last; cap++) {
		cap_value_t v = cap;
		if (p->caps[CAP_SET_EFFECTIVE] & (1ULL << cap))
			cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_SET);
		if (p->caps[CAP_SET_PERMITTED] & (1ULL << cap))
			cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_SET);
		if (p->caps[CAP_SET_INHERITABLE] & (1ULL << cap))
			cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_SET);
	}
	if (cap_set_proc(caps) < 0) {
		r = err_set(e, errno,
			    "process.capabilities: set effective/permitted/inheritable "
			    "(effective must be a subset of permitted, inheritable of bounding)");
		cap_free(caps);
		return r;
	}
	cap_free(caps);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return err_set(e, errno, "process.capabilities.ambient: clear");
	for (int cap = 0; cap <= last; cap++) {
		if (!(p->caps[CAP_SET_AMBIENT] & (1ULL << cap)))
			continue;
		/* A capability missing from permitted or inheritable cannot be
		 * ambient: runc skips it, and so do we. */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM && errno != EINVAL)
			return err_set(e, errno, "process.capabilities.ambient: raise %s", cap_to_name(cap));
	}
	return 0;
}
