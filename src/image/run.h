/*
 * `casulo run`: an image (pulled when missing) into a bundle whose rootfs
 * is an overlay of the cached layers (a copy where overlayfs is missing),
 * handed to a backend that runs it.  The container backend runs it with
 * libcasulo-oci in this process, as casulo-runtime would; a microVM
 * backend (containers in a VM) would be a second struct run_backend.
 */
#ifndef CASULO_IMAGE_RUN_H
#define CASULO_IMAGE_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "image/bundle.h"
#include "image/image.h"

struct run_opts {
	const char *image;
	char **args;
	size_t n_args;
	char **env;
	size_t n_env;
	struct volume *volumes;
	size_t n_volumes;
	bool rm, interactive, tty;
	const char *name;	  /* container id; NULL: a random one */
	const char *runtime_root; /* casulo-runtime's --root; NULL: its default */
	struct pull_opts pull;
	/* Called with the loaded image before anything is prepared (the
	 * --audit-level gate); a negative return stops the run. */
	int (*check)(struct store *s, const struct store_loaded *img, void *ctx, struct err **e);
	void *check_ctx;
};

struct run_backend {
	const char *name;
	/* Run the bundle in the foreground; *status is the exit status. */
	int (*run)(const struct run_backend *b, const char *id, const char *bundle, const struct run_opts *o,
		   int *status, struct err **e);
};

extern const struct run_backend run_backend_container;

int image_run(struct store *s, const struct run_opts *o, const struct run_backend *b, int *status, struct err **e);

#endif
