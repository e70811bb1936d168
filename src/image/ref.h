/*
 * Image references, with Docker's normalization: "busybox" is
 * docker.io/library/busybox:latest, "127.0.0.1:5000/a/b:1" keeps its
 * registry, "repo@sha256:..." names a manifest by digest.
 */
#ifndef CASULO_IMAGE_REF_H
#define CASULO_IMAGE_REF_H

#include <stdbool.h>

#include "common/err.h"
#include "image/digest.h"

struct image_ref {
	char *registry;		 /* "docker.io", "127.0.0.1:5000" */
	char *repository;	 /* "library/busybox" */
	char *tag;		 /* "latest"; NULL when only a digest was given */
	char digest[DIGEST_BUF]; /* "" when none */
	char *name;		 /* canonical: registry/repository[:tag][@digest] */
};

int ref_parse(const char *s, struct image_ref *r, struct err **e);
void ref_free(struct image_ref *r);
/* Does the registry name a loopback address (plain HTTP allowed)? */
bool ref_registry_is_loopback(const char *registry);
/* The host that serves docker.io's API. */
const char *ref_registry_api_host(const char *registry);

#endif
