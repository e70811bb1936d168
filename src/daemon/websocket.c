#include "daemon/websocket.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

ssize_t ws_parse(uint8_t *buf, size_t len, bool require_mask, size_t max_payload, struct ws_frame *f)
{
	size_t need = 2, plen;
	uint8_t *mask = NULL;
	bool masked;

	if (len < 2)
		return 0;
	if (buf[0] & 0x70)
		return -EPROTO; /* no extension was negotiated */
	f->fin = buf[0] & 0x80;
	f->opcode = buf[0] & 0x0f;
	masked = buf[1] & 0x80;
	plen = buf[1] & 0x7f;
	switch (f->opcode) {
	case WS_CONTINUATION:
	case WS_TEXT:
	case WS_BINARY:
		break;
	case WS_CLOSE:
	case WS_PING:
	case WS_PONG:
		if (!f->fin || plen > 125)
			return -EPROTO;
		break;
	default:
		return -EPROTO;
	}
	if (require_mask && !masked)
		return -EPROTO;
	if (plen == 126) {
		need += 2;
		if (len < need)
			return 0;
		plen = (size_t)buf[2] << 8 | buf[3];
	} else if (plen == 127) {
		uint64_t v = 0;
		need += 8;
		if (len < need)
			return 0;
		for (int i = 0; i < 8; i++)
			v = v << 8 | buf[2 + i];
		if (v >> 63)
			return -EPROTO;
		if (v > max_payload)
			return -EMSGSIZE;
		plen = (size_t)v;
	}
	if (plen > max_payload)
		return -EMSGSIZE;
	if (masked) {
		mask = buf + need;
		need += 4;
	}
	if (len < need || len - need < plen)
		return 0;
	f->payload = buf + need;
	f->len = plen;
	if (mask)
		ws_mask(f->payload, plen, mask);
	return (ssize_t)(need + plen);
}

size_t ws_header(uint8_t hdr[WS_HEADER_MAX], enum ws_opcode op, size_t len, const uint8_t *mask)
{
	size_t n = 2;

	hdr[0] = (uint8_t)(0x80 | op);
	if (len < 126) {
		hdr[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		n = 4;
	} else {
		hdr[1] = 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		hdr[1] |= 0x80;
		memcpy(hdr + n, mask, 4);
		n += 4;
	}
	return n;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4])
{
	for (size_t i = 0; i < len; i++)
		data[i] ^= mask[i & 3];
}

void ws_accept_value(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char digest[SHA_DIGEST_LENGTH];
	char joined[128];
	int n = snprintf(joined, sizeof(joined), "%s%s", key, guid);

	SHA1((const unsigned char *)joined, (size_t)(n < (int)sizeof(joined) ? n : (int)sizeof(joined) - 1), digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

void ws_new_key(char out[25])
{
	unsigned char raw[16];

	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		memset(raw, 0x42, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
}

bool ws_key_valid(const char *key)
{
	unsigned char raw[32];

	return key && strlen(key) == 24 && key[22] == '=' && key[23] == '=' &&
	       EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}
