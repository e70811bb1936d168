/*
 * casulo-vmm looks up no user and no group.  libselinux's seusers.o, which
 * the sVirt code brings in with selinux_config.o (the virtual domain and
 * image context files), refers to these three; glibc's static versions
 * would load NSS modules at run time, which a static program cannot do
 * safely.  Each answers "no such entry", which is also what seusers.o
 * would make of a user it cannot find; nothing in casulo-vmm calls them.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>

int getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen, struct passwd **result)
{
	(void)name;
	(void)pwd;
	(void)buf;
	(void)buflen;
	*result = NULL;
	return ENOENT;
}

int getgrnam_r(const char *name, struct group *grp, char *buf, size_t buflen, struct group **result)
{
	(void)name;
	(void)grp;
	(void)buf;
	(void)buflen;
	*result = NULL;
	return ENOENT;
}

int getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups)
{
	(void)user;
	if (*ngroups < 1) {
		*ngroups = 1;
		return -1;
	}
	groups[0] = group;
	*ngroups = 1;
	return 1;
}
