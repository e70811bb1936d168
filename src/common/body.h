/* A request body that arrives in pieces (libmicrohttpd hands an upload over
 * in chunks): the API of casulo-vmm and casulod's both keep it here. */
#ifndef CASULO_COMMON_BODY_H
#define CASULO_COMMON_BODY_H

#include <stdbool.h>
#include <stddef.h>

struct body {
	char *data; /* NUL-terminated; NULL until a byte came */
	size_t len;
	bool too_large; /* more than the limit came: the rest is dropped */
};

/* Append n bytes, or mark the body too large once it would pass max bytes
 * (its end is still read, then the request refused).  -ENOMEM. */
int body_append(struct body *b, const char *chunk, size_t n, size_t max);
/* The text so far: "" when nothing came. */
const char *body_text(const struct body *b);
void body_free(struct body *b);

#endif
