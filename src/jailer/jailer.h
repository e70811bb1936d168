/*
 * libcasulo-jailer: start a program (casulo-vmm) confined to a per-VM
 * directory, as Firecracker's jailer does (docs/jailer.md).
 *
 * jail_run() checks everything it is given before it makes anything, then
 * makes <chroot_base>/<exec name>/<id>/root and the cgroup
 * /<parent_cgroup>/<id>, forks a child in new PID, mount, IPC and UTS
 * namespaces (and a given network namespace) that bind-mounts the named
 * files, the program and its shared libraries into that root, makes its
 * own /dev with the device nodes a VM needs, pivot_roots into it, drops
 * to uid/gid with no capabilities and no_new_privs and execs the
 * program.  The caller stays as the child's parent: it forwards
 * SIGTERM/SIGINT/SIGHUP, reaps it and removes the directory and the
 * cgroup.  jail_cleanup() removes them when that parent was killed.
 */
#ifndef CASULO_JAILER_JAILER_H
#define CASULO_JAILER_JAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "common/err.h"

#define JAIL_ID_MAX 64
#define JAIL_DEFAULT_BASE "/srv/casulo-jailer"
#define JAIL_DEFAULT_CGROUP "casulo-jailer"

struct jail_file {
	char *src;  /* the host path, as given */
	char *dest; /* its path inside the jail: "/" + basename, or a library's own path */
	bool rw;    /* bind-mounted writable and given to uid:gid; else read-only */
};

struct jail_config {
	const char *id;		   /* [A-Za-z0-9_-], 1..JAIL_ID_MAX chars */
	const char *exec_file;	   /* the program, on the host */
	const char *chroot_base;   /* default JAIL_DEFAULT_BASE */
	const char *parent_cgroup; /* default JAIL_DEFAULT_CGROUP, from the hierarchies' roots */
	uid_t uid;
	gid_t gid;
	struct jail_file *files; /* --file / --rw-file */
	size_t n_files;
	char **libs; /* --lib: libraries the program opens at run time */
	size_t n_libs;
	const char *netns; /* a network namespace to join (path), or NULL */

	/* The jail's cgroup limits (--limits, --memory, --cpus, --pids): the
	 * runtime's and casulo-vmm --cgroup's struct and parser. */
	struct cgroup_resources limits;
	uint64_t rlimit_nofile, rlimit_fsize; /* 0: the defaults (4096; unlimited) */

	char **argv; /* the program's arguments after its name, NULL-terminated */
};

/* Is id a valid jail id?  -EINVAL with the reason in *e. */
int jail_check_id(const char *id, struct err **e) MUST_CHECK;

/* The per-VM directory, <base>/<exec name>/<id> (malloc'd). */
char *jail_dir(const char *chroot_base, const char *exec_file, const char *id);

/* Run the program jailed and wait for it.  Returns its exit status as a
 * shell reports it (128+signal when killed), or -errno with *e set when
 * the jail could not be made (nothing is left behind then). */
int jail_run(const struct jail_config *c, struct err **e) MUST_CHECK;

/* Kill what is left in the jail's cgroup and remove the cgroup and the
 * per-VM directory.  -ENOENT when neither exists. */
int jail_cleanup(const char *chroot_base, const char *exec_file, const char *parent_cgroup, const char *id,
		 struct err **e) MUST_CHECK;

/* The shared libraries exec_file needs, and extra ones (sonames or
 * paths) with theirs, as host paths its dynamic loader resolves
 * (libs.c).  None for a static program. */
int jail_find_libs(const char *exec_file, char *const *extra, size_t n_extra, char ***ret, size_t *n,
		   struct err **e) MUST_CHECK;

/* The child's side: everything between fork and exec (setup.c).  Never
 * returns on success; on failure returns with *e set. */
struct jail_plan {
	const struct jail_config *c;
	const char *root;	  /* <dir>/root on the host */
	const char *exec_name;	  /* basename of exec_file: "/exec_name" in the jail */
	struct jail_file *mounts; /* every file to bind: files, program, libraries */
	size_t n_mounts;
	int netns_fd; /* -1: stay */
	struct cgroup *cg;
};
int jail_child(const struct jail_plan *p, struct err **e);

#endif
