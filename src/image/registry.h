/*
 * A client of the OCI distribution API (v2) over libcurl: the ping that
 * finds the scheme and the auth scheme, bearer tokens and basic auth
 * (credentials from --creds or the auth.json files podman and docker
 * write), manifests, and blobs downloaded in parallel straight into the
 * store, resumed with ranged requests.  HTTPS uses the system CAs plus
 * --tls-ca; plain HTTP only with --insecure or on loopback.
 */
#ifndef CASULO_IMAGE_REGISTRY_H
#define CASULO_IMAGE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/store.h"

struct progress;

struct registry_opts {
	const char *authfile; /* NULL: $REGISTRY_AUTH_FILE, podman's and docker's files */
	const char *creds;    /* "user:password" */
	const char *tls_ca;   /* a PEM file of CAs trusted beside the system's */
	bool insecure;	      /* allow plain HTTP and unverified TLS */
	uint64_t limit_rate;  /* bytes per second for each download, 0: none */
	unsigned parallel;    /* blob downloads at once, 0: 4 */
};

struct registry {
	char *host; /* as named: "127.0.0.1:5000", "docker.io" */
	char *base; /* "https://127.0.0.1:5000" */
	char *repository;
	char *user, *password;
	char *auth;	 /* "Authorization: ..." header, or NULL */
	char *challenge; /* the WWW-Authenticate header of the ping */
	void *ca_blob;	 /* system CAs + tls_ca, for CURLOPT_CAINFO_BLOB */
	size_t ca_len;
	int last_curl; /* CURLcode of the last request */
	struct registry_opts o;
};

int registry_open(struct registry *r, const char *host, const char *repository, const struct registry_opts *o,
		  struct err **e);
void registry_close(struct registry *r);

/* A manifest or index by tag or digest; checked against the digest when
 * one was asked for, and against Docker-Content-Digest when sent. */
int registry_get_manifest(struct registry *r, const char *reference, char **body, size_t *len, char **media_type,
			  char digest[DIGEST_BUF], struct err **e);

/* Download these blobs into the store (those present are skipped),
 * several at once, each verified before it is stored. */
int registry_fetch_blobs(struct registry *r, struct store *s, const struct descriptor *const *blobs, size_t n,
			 struct progress *p, struct err **e);

/* Credentials for a registry from an auth.json (podman, docker): the
 * decoded user and password.  Returns 0, -ENOENT when none. */
int registry_find_credentials(const char *authfile, const char *host, const char *repository, char **user,
			      char **password, struct err **e);

/* Parse a WWW-Authenticate header's scheme and the value of one param. */
int registry_challenge_param(const char *header, const char *param, char *out, size_t size);

#endif
