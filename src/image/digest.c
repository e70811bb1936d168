#include "image/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool digest_valid(const char *s)
{
	if (s == NULL || strncmp(s, DIGEST_PREFIX, sizeof(DIGEST_PREFIX) - 1) != 0)
		return false;
	s += sizeof(DIGEST_PREFIX) - 1;
	for (size_t i = 0; i < DIGEST_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[DIGEST_HEX_LEN] == '\0';
}

int digest_check(const char *s, const char *what, struct err **e)
{
	if (digest_valid(s))
		return 0;
	if (s && strchr(s, ':') && strncmp(s, DIGEST_PREFIX, sizeof(DIGEST_PREFIX) - 1) != 0)
		return err_setx(e, EINVAL, "%s: unsupported digest algorithm in '%.80s' (only sha256)", what, s);
	return err_setx(e, EINVAL, "%s: malformed digest '%.80s'", what, s ? s : "");
}

void digest_short(const char *d, char out[13])
{
	const char *h = digest_valid(d) ? digest_hex(d) : d;

	snprintf(out, 13, "%s", h ? h : "");
}

int hasher_init(struct hasher *h)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	h->bytes = 0;
	h->ctx = ctx;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		h->ctx = NULL;
		return -ENOMEM;
	}
	return 0;
}

void hasher_update(struct hasher *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
	h->bytes += len;
}

static void hex_digest(const unsigned char *md, char out[DIGEST_BUF])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out + sizeof(DIGEST_PREFIX) - 1;

	memcpy(out, DIGEST_PREFIX, sizeof(DIGEST_PREFIX) - 1);
	for (int i = 0; i < 32; i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 15];
	}
	*p = '\0';
}

void hasher_final(struct hasher *h, char out[DIGEST_BUF])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(h->ctx, md, &n);
	hex_digest(md, out);
}

void hasher_free(struct hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int hasher_copy(struct hasher *dst, const struct hasher *src)
{
	dst->ctx = EVP_MD_CTX_new();
	if (dst->ctx == NULL || EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) != 1) {
		EVP_MD_CTX_free(dst->ctx);
		dst->ctx = NULL;
		return -ENOMEM;
	}
	dst->bytes = src->bytes;
	return 0;
}

void digest_buffer(const void *data, size_t len, char out[DIGEST_BUF])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	hex_digest(md, out);
}

int digest_fd(int fd, char out[DIGEST_BUF], uint64_t *size)
{
	static __thread char buf[256 * 1024];
	struct hasher h;
	int r = hasher_init(&h);

	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			hasher_free(&h);
			return r;
		}
		if (n == 0)
			break;
		hasher_update(&h, buf, (size_t)n);
	}
	if (size)
		*size = h.bytes;
	hasher_final(&h, out);
	hasher_free(&h);
	return 0;
}
