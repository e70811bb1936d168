/*
 * The process side of selinux.h: whether SELinux is on, the next exec's
 * label.  A file of its own so that the static casulo-runtime and
 * casulo-init link only this (and the few libselinux objects it needs),
 * not the file-labelling code that brings glibc's NSS along (libselinux's
 * seusers.o).
 */
#include <errno.h>

#include <selinux/selinux.h>

#include "security/selinux.h"

bool sel_enabled(void)
{
	return is_selinux_enabled() > 0;
}

int sel_set_exec(const char *what, const char *ctx, struct err **e)
{
	if (setexeccon(ctx) != 0)
		return err_set(e, errno, "%s '%s': set exec label", what, ctx);
	return 0;
}
