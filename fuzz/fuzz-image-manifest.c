/*
 * Fuzz target: the image document parsers (manifest, index, config) on
 * hostile input.  The first byte picks the parser; an index that parses
 * is searched for a platform, as a pull does.
 */
#include <stdint.h>
#include <stdlib.h>

#include "image/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err *e = NULL;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		struct image_config c;
		if (image_config_parse((const char *)data + 1, size - 1, "config", &c, &e) == 0) {
			if (c.n_diff_ids && !digest_valid(c.diff_ids[c.n_diff_ids - 1]))
				abort(); /* every diff_id accepted is a valid digest */
			image_config_free(&c);
		}
	} else {
		struct manifest m;
		if (manifest_parse((const char *)data + 1, size - 1, "manifest", &m, &e) == 0) {
			if (m.kind == MANIFEST_INDEX)
				(void)manifest_select_platform(&m, "linux", "amd64", NULL, &e);
			for (size_t i = 0; i < m.n_layers; i++)
				if (!digest_valid(m.layers[i].digest) || m.layers[i].size < 0)
					abort();
			manifest_free(&m);
		}
	}
	err_free(&e);
	return 0;
}
