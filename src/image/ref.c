#include "image/ref.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_REGISTRY "docker.io"

/* A repository path component: [a-z0-9]+ joined by '.', '_', '__' or '-'s. */
static bool component_valid(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '.' || c == '_' || c == '-') {
			/* separators do not repeat, except "__" and runs of '-' */
			if (i + 1 < n && (s[i + 1] == '.' || s[i + 1] == '_' || s[i + 1] == '-') &&
			    !(c == '_' && s[i + 1] == '_' && (i + 2 >= n || isalnum((unsigned char)s[i + 2]))) &&
			    !(c == '-' && s[i + 1] == '-'))
				return false;
			continue;
		}
		return false;
	}
	return true;
}

static bool repository_valid(const char *repo)
{
	const char *p = repo;

	if (strlen(repo) > 255)
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!component_valid(p, n))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

static bool registry_valid(const char *r)
{
	if (*r == '\0' || strlen(r) > 255)
		return false;
	for (; *r; r++)
		if (!(isalnum((unsigned char)*r) || strchr(".-:[]", *r)))
			return false;
	return true;
}

int ref_parse(const char *s, struct image_ref *r, struct err **e)
{
	_cleanup_free_ char *copy = strdup(s ? s : "");
	char *rest, *at, *colon, *slash;
	int rc;

	memset(r, 0, sizeof(*r));
	if (copy == NULL)
		return err_set(e, ENOMEM, "image reference");
	if (*copy == '\0')
		return err_setx(e, EINVAL, "image reference '': empty");
	at = strchr(copy, '@');
	if (at) {
		*at = '\0';
		if (digest_check(at + 1, "image reference", e) < 0)
			return err_wrap(e, "image reference '%s'", s);
		snprintf(r->digest, sizeof(r->digest), "%s", at + 1);
	}
	rest = copy;
	slash = strchr(copy, '/');
	/* The first component is a registry when it looks like a host. */
	if (slash && (memchr(copy, '.', (size_t)(slash - copy)) || memchr(copy, ':', (size_t)(slash - copy)) ||
		      strncmp(copy, "localhost/", 10) == 0)) {
		*slash = '\0';
		if (!registry_valid(copy))
			return err_setx(e, EINVAL, "image reference '%s': invalid registry '%s'", s, copy);
		r->registry = strdup(copy);
		rest = slash + 1;
	} else {
		r->registry = strdup(DEFAULT_REGISTRY);
	}
	colon = strrchr(rest, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1)) {
			rc = err_setx(e, EINVAL, "image reference '%s': invalid tag '%s'", s, colon + 1);
			ref_free(r);
			return rc;
		}
		r->tag = strdup(colon + 1);
	} else if (r->digest[0] == '\0') {
		r->tag = strdup("latest");
	}
	if (!repository_valid(rest)) {
		rc = err_setx(e, EINVAL,
			      "image reference '%s': invalid repository '%s' (lowercase letters, digits, separators)",
			      s, rest);
		ref_free(r);
		return rc;
	}
	if (strcmp(r->registry, DEFAULT_REGISTRY) == 0 && strchr(rest, '/') == NULL) {
		if (asprintf(&r->repository, "library/%s", rest) < 0)
			r->repository = NULL;
	} else {
		r->repository = strdup(rest);
	}
	if (r->registry == NULL || r->repository == NULL ||
	    asprintf(&r->name, "%s/%s%s%s%s%s", r->registry, r->repository, r->tag ? ":" : "", r->tag ? r->tag : "",
		     r->digest[0] ? "@" : "", r->digest) < 0) {
		r->name = NULL;
		ref_free(r);
		return err_set(e, ENOMEM, "image reference '%s'", s);
	}
	return 0;
}

void ref_free(struct image_ref *r)
{
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->name);
	memset(r, 0, sizeof(*r));
}

bool ref_registry_is_loopback(const char *registry)
{
	size_t n;
	const char *colon;

	if (registry[0] == '[') /* [::1]:5000 */
		return strncmp(registry, "[::1]", 5) == 0;
	colon = strchr(registry, ':');
	n = colon ? (size_t)(colon - registry) : strlen(registry);
	if (n == 9 && strncmp(registry, "localhost", 9) == 0)
		return true;
	return n >= 4 && strncmp(registry, "127.", 4) == 0;
}

const char *ref_registry_api_host(const char *registry)
{
	return strcmp(registry, DEFAULT_REGISTRY) == 0 ? "registry-1.docker.io" : registry;
}
