/*
 * Content digests: "sha256:<64 lowercase hex>" strings, the only algorithm
 * Casulo accepts (the OCI image spec's registered default), and a
 * streaming hasher over OpenSSL's libcrypto.
 */
#ifndef CASULO_IMAGE_DIGEST_H
#define CASULO_IMAGE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define DIGEST_PREFIX "sha256:"
#define DIGEST_HEX_LEN 64
#define DIGEST_LEN (sizeof(DIGEST_PREFIX) - 1 + DIGEST_HEX_LEN) /* 71 */
#define DIGEST_BUF (DIGEST_LEN + 1)

/* Is s a well-formed sha256 digest (lowercase hex, exact length)? */
bool digest_valid(const char *s);
/* Check s; on failure fill *e naming what (e.g. "manifest layers[2].digest"). */
int digest_check(const char *s, const char *what, struct err **e);
/* The hex part of a valid digest. */
static inline const char *digest_hex(const char *d)
{
	return d + sizeof(DIGEST_PREFIX) - 1;
}
/* A short form for people: the first 12 hex digits. */
void digest_short(const char *d, char out[13]);

struct hasher {
	void *ctx; /* EVP_MD_CTX */
	uint64_t bytes;
};

int hasher_init(struct hasher *h);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* Finish into out ("sha256:..."); the hasher can be freed afterwards. */
void hasher_final(struct hasher *h, char out[DIGEST_BUF]);
void hasher_free(struct hasher *h);
/* A copy of the hasher's state (to read a digest mid-stream). */
int hasher_copy(struct hasher *dst, const struct hasher *src);

/* Digest of a buffer. */
void digest_buffer(const void *data, size_t len, char out[DIGEST_BUF]);
/* Digest and size of what is left to read in fd (read to EOF). */
int digest_fd(int fd, char out[DIGEST_BUF], uint64_t *size);

#endif
