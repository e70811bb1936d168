/*
 * libcasulo-image's verbs, one call each for the `casulo image` CLI:
 * pull, import, export (the store's own calls in store.h serve ls, tag,
 * rm, prune), unpack to a bundle, audit (audit.h) and the run of an image
 * (run.h).
 */
#ifndef CASULO_IMAGE_IMAGE_H
#define CASULO_IMAGE_IMAGE_H

#include "common/err.h"
#include "image/manifest.h"
#include "image/registry.h"
#include "image/store.h"

struct progress;

struct pull_opts {
	struct registry_opts registry;
	const char *platform; /* "os/arch[/variant]", NULL: linux and this machine's */
	struct progress *progress;
};

/* Pull ref into the store and name it; *name receives the canonical
 * name and manifest (optional) its descriptor. */
int image_pull(struct store *s, const char *ref, const struct pull_opts *o, char **name, struct descriptor *manifest,
	       struct err **e);

/* Import an OCI layout directory, an OCI archive or a docker-archive tar.
 * Images take the names the source gives them (ref.name annotations,
 * RepoTags), or name when given (the source must then hold one image).
 * *names receives the names given (NULL-terminated). */
int image_import(struct store *s, const char *path, const char *name, struct progress *p, char ***names,
		 struct err **e);

/* The same, naming unnamed images localhost/<source name>:image-N
 * (the audit of a path takes whatever the source holds). */
int image_import_any(struct store *s, const char *path, struct progress *p, char ***names, struct err **e);

/* Write an image as an OCI layout directory (created; blobs hard-linked
 * from the store where it shares its filesystem, else copied). */
int image_export(struct store *s, const char *what, const char *dir, struct err **e);

#endif
