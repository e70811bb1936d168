#include "common/file.h"
#include "image/run.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/progress.h"
#include "image/unpack.h"
#include "oci/oci.h"
#include "oci/util.h"

static int container_run(const struct run_backend *b, const char *id, const char *bundle, const struct run_opts *o,
			 int *status, struct err **e)
{
	struct oci_global g = {.root = o->runtime_root ? o->runtime_root : OCI_DEFAULT_ROOT};
	struct oci_create_opts c = {.bundle = bundle};

	(void)b;
	return oci_run(&g, id, &c, status, e);
}

const struct run_backend run_backend_container = {
    .name = "container",
    .run = container_run,
};

static int find_or_pull(struct store *s, const struct run_opts *o, struct store_loaded *l, struct err **e)
{
	struct store_image im;
	int r = store_find(s, o->image, &im, e);

	if (r == -ENOENT) {
		char *name = NULL;
		err_free(e);
		if ((r = image_pull(s, o->image, &o->pull, &name, NULL, e)) < 0)
			return r;
		r = store_find(s, name, &im, e);
		free(name);
	}
	if (r < 0)
		return r;
	r = store_load(s, &im.manifest, l, e);
	free(im.name);
	descriptor_free(&im.manifest);
	return r;
}

/* The rootfs: an overlay of the cached layers in a mount namespace of
 * our own (it goes away with us, even on kill -9), else a copy. */
static int prepare_rootfs(struct store *s, const struct store_loaded *l, const char *dir, const char *rootfs,
			  struct progress *p, bool *overlay, struct err **e)
{
	char upper[4200], work[4200], layers[4200];
	struct unpack_stats st;
	FILE *f;
	int r;

	*overlay = false;
	if (geteuid() == 0 && l->manifest.n_layers > 0) {
		if ((r = unpack_image_cached(s, l, p, e)) < 0)
			return r;
		/* The layers this container uses, kept from prune. */
		snprintf(layers, sizeof(layers), "%s/layers", dir);
		f = fopen(layers, "we");
		if (f == NULL)
			return err_set(e, errno, "container '%s': layers", dir);
		for (size_t i = 0; i < l->config.n_diff_ids; i++)
			fprintf(f, "%s\n", digest_hex(l->config.diff_ids[i]));
		if (fclose(f) != 0)
			return err_set(e, errno, "container '%s': layers", dir);
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			return err_set(e, errno, "container '%s': private mount namespace", dir);
		snprintf(upper, sizeof(upper), "%s/upper", dir);
		snprintf(work, sizeof(work), "%s/work", dir);
		r = unpack_mount_overlay(s, l, upper, work, rootfs, e);
		if (r == 0) {
			*overlay = true;
			return 0;
		}
		if (r != -ENOTSUP)
			return r;
		err_free(e); /* no overlayfs here: copy */
		rmdir(rootfs);
	}
	return unpack_image_flat(s, l, rootfs, p, &st, e);
}

static void random_id(char out[32])
{
	unsigned char b[6] = {0};

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		memset(b, (int)getpid(), sizeof(b));
	snprintf(out, 32, "casulo-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

int image_run(struct store *s, const struct run_opts *o, const struct run_backend *b, int *status, struct err **e)
{
	struct store_loaded l;
	struct bundle_opts bo = {
	    .args = o->args,
	    .n_args = o->n_args,
	    .env = o->env,
	    .n_env = o->n_env,
	    .volumes = o->volumes,
	    .n_volumes = o->n_volumes,
	    .terminal = o->tty,
	    .require_command = true,
	};
	char id[64], dir[4096], rootfs[4200];
	bool overlay = false;
	int r;

	*status = 0;
	if ((r = find_or_pull(s, o, &l, e)) < 0)
		return r;
	if (o->check && (r = o->check(s, &l, o->check_ctx, e)) < 0) {
		store_loaded_free(&l);
		return r;
	}
	if (o->name)
		snprintf(id, sizeof(id), "%s", o->name);
	else
		random_id(id);
	if (strchr(id, '/') || id[0] == '.' || id[0] == '\0') {
		store_loaded_free(&l);
		return err_setx(e, EINVAL, "container name '%s': no '/', no leading '.'", id);
	}
	snprintf(dir, sizeof(dir), "%s/containers/%s", s->root, id);
	if (mkdirat(s->containers_fd, id, 0700) < 0) {
		r = errno == EEXIST ? err_setx(e, EEXIST, "container '%s': exists (%s)", id, dir)
				    : err_set(e, errno, "container '%s': mkdir %s", id, dir);
		store_loaded_free(&l);
		return r;
	}
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	bo.rootfs = rootfs;
	bo.hostname = id;
	r = prepare_rootfs(s, &l, dir, rootfs, o->pull.progress, &overlay, e);
	if (r == 0)
		r = bundle_write_config(dir, rootfs, &l.config, &bo, e);
	if (r == 0) {
		int saved_stdin = -1;
		if (!o->interactive && !o->tty) {
			/* Without -i the container reads nothing. */
			int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
			saved_stdin = dup(STDIN_FILENO);
			if (null >= 0) {
				dup2(null, STDIN_FILENO);
				close(null);
			}
		}
		r = b->run(b, id, dir, o, status, e);
		if (saved_stdin >= 0) {
			dup2(saved_stdin, STDIN_FILENO);
			close(saved_stdin);
		}
	}
	if (overlay)
		umount2(rootfs, MNT_DETACH);
	if (o->rm || r < 0)
		remove_tree_at(s->containers_fd, id);
	store_loaded_free(&l);
	return r;
}
