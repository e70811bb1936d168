/*
 * Fuzz target: the snapshot state-file reader (header, sections, CRCs,
 * trailer) and the field readers the restore code uses, on hostile input.
 * A file the reader accepts is walked section by section with every kind
 * of field read, as a restore would.
 */
#include <stdint.h>
#include <stdlib.h>

#include "vmm/snapshot/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_reader r;
	struct err *e = NULL;

	if (snap_reader_parse(&r, data, size, &e) == 0) {
		for (uint32_t i = 0; i < r.nsections; i++) {
			struct snap_section s;
			char str[64];
			uint8_t bytes[32];

			if (!snap_find(&r, r.sections[i].name, &s))
				abort(); /* every listed section must be found */
			while (!s.overrun && s.pos < s.len) {
				switch (s.pos % 5) {
				case 0:
					(void)snap_get_u8(&s);
					break;
				case 1:
					(void)snap_get_u16(&s);
					break;
				case 2:
					(void)snap_get_u64(&s);
					break;
				case 3:
					snap_get_str(&s, str, sizeof(str));
					break;
				default:
					snap_get_bytes(&s, bytes, sizeof(bytes));
					break;
				}
			}
		}
		snap_reader_free(&r);
	}
	err_free(&e);
	return 0;
}
