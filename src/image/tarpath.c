#include "image/tarpath.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tarpath_clean(const char *name, char *out, size_t size)
{
	size_t o = 0;
	const char *p = name;

	if (size == 0)
		return -ENAMETOOLONG;
	while (*p) {
		const char *end;
		size_t n;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 1 && p[0] == '.') {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EINVAL;
		if (o + (o ? 1 : 0) + n + 1 > size)
			return -ENAMETOOLONG;
		if (o)
			out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return 0;
}

void tarpath_split(const char *clean, char *parent, size_t size, const char **name)
{
	const char *slash = strrchr(clean, '/');

	if (slash == NULL) {
		if (size)
			parent[0] = '\0';
		*name = clean;
		return;
	}
	snprintf(parent, size, "%.*s", (int)(slash - clean), clean);
	*name = slash + 1;
}

int tarpath_classify(const char *clean, char *target, size_t size)
{
	char parent[4096];
	const char *name;

	tarpath_split(clean, parent, sizeof(parent), &name);
	if (strncmp(name, WHITEOUT_PREFIX, sizeof(WHITEOUT_PREFIX) - 1) != 0)
		return TARPATH_NORMAL;
	if (strcmp(name, WHITEOUT_OPAQUE) == 0) {
		if ((size_t)snprintf(target, size, "%s", parent) >= size)
			return -ENAMETOOLONG;
		return TARPATH_OPAQUE;
	}
	if (strncmp(name, WHITEOUT_PREFIX WHITEOUT_PREFIX, 2 * (sizeof(WHITEOUT_PREFIX) - 1)) == 0)
		return TARPATH_RESERVED;
	name += sizeof(WHITEOUT_PREFIX) - 1;
	if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if ((size_t)snprintf(target, size, "%s%s%s", parent, parent[0] ? "/" : "", name) >= size)
		return -ENAMETOOLONG;
	return TARPATH_WHITEOUT;
}

bool tarpath_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
}

static struct strmap_slot *find_slot(const struct strmap *m, const char *key)
{
	size_t i = (size_t)hash_str(key) & (m->cap - 1);

	while (m->slots[i].key && strcmp(m->slots[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static int grow(struct strmap *m)
{
	struct strmap old = *m;

	m->cap = old.cap ? old.cap * 2 : 64;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (m->slots == NULL) {
		*m = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key)
			*find_slot(m, old.slots[i].key) = old.slots[i];
	free(old.slots);
	return 0;
}

int strmap_put(struct strmap *m, const char *key, void *value, void **old)
{
	struct strmap_slot *s;

	if (old)
		*old = NULL;
	if ((m->count + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return -ENOMEM;
	s = find_slot(m, key);
	if (s->key) {
		if (old)
			*old = s->value;
		s->value = value;
		return 0;
	}
	s->key = strdup(key);
	if (s->key == NULL)
		return -ENOMEM;
	s->value = value;
	m->count++;
	return 0;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s;

	if (m->cap == 0)
		return NULL;
	s = find_slot(m, key);
	return s->key ? s->value : NULL;
}

bool strmap_has(const struct strmap *m, const char *key)
{
	return m->cap && find_slot(m, key)->key != NULL;
}

void strmap_free(struct strmap *m, void (*free_value)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slots[i].key);
		if (free_value && m->slots[i].key)
			free_value(m->slots[i].value);
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

int strmap_add_with_parents(struct strmap *m, const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (;;) {
		char *slash;
		if (strmap_has(m, buf))
			return 0; /* its parents were added with it */
		if (strmap_put(m, buf, NULL, NULL) < 0)
			return -ENOMEM;
		if (buf[0] == '\0')
			return 0;
		slash = strrchr(buf, '/');
		if (slash)
			*slash = '\0';
		else
			buf[0] = '\0';
	}
}
