/*
 * SELinux for Casulo on libselinux: see selinux.h.
 */
#include "security/selinux.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <selinux/context.h>
#include <selinux/selinux.h>

#include "common/file.h"
#include "common/log.h"

/* The level of a context: what follows its third colon. */
static const char *context_level(const char *context)
{
	const char *p = context;

	for (int i = 0; i < 3; i++) {
		p = strchr(p, ':');
		if (p == NULL)
			return NULL;
		p++;
	}
	return p;
}

bool sel_context_well_formed(const char *s)
{
	const char *p = s;

	/* user, role and type: each non-empty, then the level. */
	for (int i = 0; i < 3; i++) {
		const char *c = strchr(p, ':');
		if (c == NULL || c == p)
			return false;
		p = c + 1;
	}
	if (*p == '\0')
		return false;
	for (p = s; *p; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return true;
}

bool sel_context_pair(const char *context, struct sel_pair *pair)
{
	const char *level = context_level(context);
	unsigned a, b;
	int end = 0;

	if (level == NULL || sscanf(level, "s0:c%u,c%u%n", &a, &b, &end) != 2 || level[end] != '\0')
		return false;
	/* "c003" is not how the kernel writes categories; a pair is two. */
	if (a >= b || b >= SEL_CATEGORIES)
		return false;
	*pair = (struct sel_pair){a, b};
	return true;
}

int sel_pair_pick(const struct sel_pair *used, size_t nused, unsigned (*rand_fn)(void), struct sel_pair *out)
{
	/* One bit per ordered (a, b): 128 KiB, so that the check is O(1). */
	unsigned char *taken = calloc(SEL_CATEGORIES * SEL_CATEGORIES / 8, 1);

	if (taken == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < nused; i++) {
		unsigned bit = used[i].a * SEL_CATEGORIES + used[i].b;
		if (used[i].a < used[i].b && used[i].b < SEL_CATEGORIES)
			taken[bit / 8] |= (unsigned char)(1u << (bit % 8));
	}
	/* Random first, as libvirt does: a pair is not guessable from the
	 * number of VMs started before. */
	for (int tries = 0; tries < 256; tries++) {
		unsigned a = rand_fn() % SEL_CATEGORIES, b = rand_fn() % SEL_CATEGORIES, bit;
		if (a == b)
			continue;
		if (a > b) {
			unsigned t = a;
			a = b, b = t;
		}
		bit = a * SEL_CATEGORIES + b;
		if (!(taken[bit / 8] & (1u << (bit % 8)))) {
			*out = (struct sel_pair){a, b};
			free(taken);
			return 0;
		}
	}
	/* Nearly all taken: the first free one. */
	for (unsigned a = 0; a < SEL_CATEGORIES; a++) {
		for (unsigned b = a + 1; b < SEL_CATEGORIES; b++) {
			unsigned bit = a * SEL_CATEGORIES + b;
			if (!(taken[bit / 8] & (1u << (bit % 8)))) {
				*out = (struct sel_pair){a, b};
				free(taken);
				return 0;
			}
		}
	}
	free(taken);
	return -EAGAIN;
}

int sel_pairs_in_use(const char *proc_dir, struct sel_pair **used, size_t *nused, struct err **e)
{
	DIR *d = opendir(proc_dir);
	struct dirent *de;

	if (d == NULL)
		return err_set(e, errno, "'%s': opendir", proc_dir);
	while ((de = readdir(d)) != NULL) {
		char path[512], *ctx = NULL;
		struct sel_pair pair;
		size_t len;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%s/attr/current", proc_dir, de->d_name);
		/* A process that ended meanwhile has nothing to say. */
		if (read_file(path, &ctx, &len) < 0)
			continue;
		/* The kernel ends it with a NUL, sometimes a newline. */
		ctx[strcspn(ctx, "\n")] = '\0';
		if (sel_context_pair(ctx, &pair)) {
			struct sel_pair *grown = realloc(*used, (*nused + 1) * sizeof(**used));
			if (grown == NULL) {
				free(ctx);
				closedir(d);
				return err_set(e, ENOMEM, "'%s': the category pairs in use", proc_dir);
			}
			*used = grown;
			(*used)[(*nused)++] = pair;
		}
		free(ctx);
	}
	closedir(d);
	return 0;
}

int sel_context_with_level(const char *ctx, const char *level, char **out, struct err **e)
{
	context_t c = context_new(ctx);
	const char *s;

	if (c == NULL)
		return err_set(e, errno ? errno : EINVAL, "context '%s'", ctx);
	if (context_range_set(c, level) != 0 || (s = context_str(c)) == NULL || (*out = strdup(s)) == NULL) {
		int code = errno ? errno : EINVAL;
		context_free(c);
		return err_set(e, code, "context '%s' with level '%s'", ctx, level);
	}
	context_free(c);
	return 0;
}

int sel_context_with_pair(const char *ctx, const struct sel_pair *pair, char **out, struct err **e)
{
	char level[64];

	snprintf(level, sizeof(level), "s0:c%u,c%u", pair->a, pair->b);
	return sel_context_with_level(ctx, level, out, e);
}

/* The first line of a libselinux contexts file. */
/* Line n (0 for the first) of a contexts file, a context. */
static int context_line(const char *path, unsigned n, char **out, struct err **e)
{
	char *text = NULL, *line;
	size_t len;
	int r = read_file(path, &text, &len);

	if (r < 0)
		return err_set(e, -r, "SELinux contexts file '%s'", path);
	line = text;
	for (unsigned i = 0; i < n && line; i++) {
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	if (line)
		line[strcspn(line, "\n")] = '\0';
	if (line == NULL || !sel_context_well_formed(line)) {
		free(text);
		return err_setx(e, EINVAL, "SELinux contexts file '%s': no context on line %u", path, n + 1);
	}
	*out = strdup(line);
	free(text);
	return *out ? 0 : err_set(e, ENOMEM, "SELinux contexts file '%s'", path);
}

static int first_line(const char *path, char **out, struct err **e)
{
	return context_line(path, 0, out, e);
}

int sel_virt_contexts(char **domain, char **image, struct err **e)
{
	if (first_line(selinux_virtual_domain_context_path(), domain, e) < 0)
		return -1;
	if (first_line(selinux_virtual_image_context_path(), image, e) < 0) {
		free(*domain);
		*domain = NULL;
		return -1;
	}
	return 0;
}

int sel_virt_content_context(char **content, struct err **e)
{
	return context_line(selinux_virtual_image_context_path(), 1, content, e);
}

int sel_context_check(const char *what, const char *ctx, struct err **e)
{
	if (security_check_context(ctx) != 0)
		return err_setx(e, EINVAL, "%s '%s': not a valid context in the loaded policy", what, ctx);
	return 0;
}

int sel_relabel_file(struct sel_relabel *r, const char *what, const char *path, const char *ctx, struct err **e)
{
	char *old = NULL;
	void *grown;

	if (getfilecon(path, &old) < 0)
		return err_set(e, errno, "%s: read its SELinux label", what);
	grown = realloc(r->files, (r->n + 1) * sizeof(*r->files));
	if (grown == NULL) {
		freecon(old);
		return err_set(e, ENOMEM, "%s: relabel", what);
	}
	r->files = grown;
	if (setfilecon(path, ctx) < 0) {
		int code = errno;
		freecon(old);
		return err_set(e, code, "%s: label it '%s'", what, ctx);
	}
	r->files[r->n].path = strdup(path);
	r->files[r->n].old = old;
	r->n++;
	return 0;
}

int sel_relabel_restore(struct sel_relabel *r)
{
	int failed = 0;

	for (size_t i = r->n; i-- > 0;) {
		if (r->files[i].path == NULL || setfilecon(r->files[i].path, r->files[i].old) < 0) {
			log_error("'%s': put back its SELinux label '%s': %s",
				  r->files[i].path ? r->files[i].path : "?", r->files[i].old, strerror(errno));
			failed++;
		}
	}
	sel_relabel_keep(r);
	return failed;
}

void sel_relabel_keep(struct sel_relabel *r)
{
	while (r->n > 0) {
		r->n--;
		free(r->files[r->n].path);
		freecon(r->files[r->n].old);
	}
	free(r->files);
	r->files = NULL;
}

int sel_pair_lock(const char *path, struct err **e)
{
	char dir[512];
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return err_set(e, errno, "lock directory '%s'", dir);
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "lock file '%s'", path);
	if (flock(fd, LOCK_EX) < 0) {
		int code = errno;
		close(fd);
		return err_set(e, code, "lock file '%s'", path);
	}
	return fd;
}
