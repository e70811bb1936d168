/*
 * OCI bundles from images: config.json from the image config (Entrypoint
 * and Cmd, Env, WorkingDir, User resolved against the image's /etc/passwd
 * and /etc/group), on casulo-runtime's default spec.
 */
#ifndef CASULO_IMAGE_BUNDLE_H
#define CASULO_IMAGE_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"
#include "image/manifest.h"
#include "image/store.h"

struct progress;

struct user_ids {
	uid_t uid;
	gid_t gid;
	gid_t *gids; /* supplementary groups */
	size_t n_gids;
};

/* Resolve a USER value ("name", "uid", "name:group", "uid:gid", "" for
 * root) against the texts of /etc/passwd and /etc/group (NULL when the
 * image has none).  A name that is not there is an error; a number
 * needs no entry.  Supplementary groups are those that list the user,
 * unless a group was given. */
int user_resolve(const char *spec, const char *passwd, const char *group, struct user_ids *out, struct err **e);
void user_ids_free(struct user_ids *u);

struct volume {
	char *host, *container;
	bool readonly;
};
/* "HOST:CONTAINER[:ro|rw]" (HOST made absolute, CONTAINER absolute). */
int volume_parse(const char *s, struct volume *v, struct err **e);
void volume_free(struct volume *v);

struct bundle_opts {
	char **args; /* replaces Cmd (the Entrypoint stays) */
	size_t n_args;
	char **env; /* KEY=VALUE, over the image's */
	size_t n_env;
	const struct volume *volumes;
	size_t n_volumes;
	bool terminal;
	const char *rootfs;   /* root.path in config.json */
	const char *hostname; /* NULL: "casulo" */
	bool require_command; /* no Entrypoint, Cmd or args: an error (else "sh") */
};

/* Write bundle_dir/config.json for the image config; the rootfs (for
 * /etc/passwd and /etc/group) is rootfs_dir. */
int bundle_write_config(const char *bundle_dir, const char *rootfs_dir, const struct image_config *cfg,
			const struct bundle_opts *o, struct err **e);

/* `casulo image unpack`: the image's rootfs (flat) in bundle/rootfs and
 * its config.json. */
int image_unpack(struct store *s, const char *what, const char *bundle, struct progress *p, struct err **e);

#endif
