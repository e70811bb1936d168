#include "common/body.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int body_append(struct body *b, const char *chunk, size_t n, size_t max)
{
	char *grown;

	if (b->too_large || n > max || b->len > max - n) {
		b->too_large = true;
		return 0;
	}
	grown = realloc(b->data, b->len + n + 1);
	if (grown == NULL)
		return -ENOMEM;
	b->data = grown;
	memcpy(b->data + b->len, chunk, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

const char *body_text(const struct body *b)
{
	return b->data ? b->data : "";
}

void body_free(struct body *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}
