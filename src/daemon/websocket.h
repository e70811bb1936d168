/*
 * WebSocket (RFC 6455) framing, for casulod's console (the server side)
 * and `casulo console` (the client side).  Pure functions over buffers;
 * the handshake's key and accept value through libcrypto's SHA-1.
 */
#ifndef CASULO_DAEMON_WEBSOCKET_H
#define CASULO_DAEMON_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ws_opcode {
	WS_CONTINUATION = 0x0,
	WS_TEXT = 0x1,
	WS_BINARY = 0x2,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xa,
};

#define WS_HEADER_MAX 14

struct ws_frame {
	bool fin;
	enum ws_opcode opcode;
	uint8_t *payload; /* inside the buffer parsed, unmasked in place */
	size_t len;
};

/*
 * One frame from the start of buf: the bytes it took (header and payload),
 * 0 when buf holds only part of it, or -EPROTO (a reserved bit or opcode,
 * a control frame over 125 bytes or fragmented, a client frame not masked
 * when masked is required) or -EMSGSIZE (a payload over max_payload).
 */
ssize_t ws_parse(uint8_t *buf, size_t len, bool require_mask, size_t max_payload, struct ws_frame *f);

/* The header of a final frame of len bytes; with mask (4 bytes), the
 * payload must then be masked with ws_mask().  Returns its length. */
size_t ws_header(uint8_t hdr[WS_HEADER_MAX], enum ws_opcode op, size_t len, const uint8_t *mask);
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4]);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (base64, 28 chars + NUL). */
void ws_accept_value(const char *key, char out[29]);
/* A fresh Sec-WebSocket-Key (24 chars + NUL). */
void ws_new_key(char out[25]);
/* A key is 16 bytes in base64. */
bool ws_key_valid(const char *key);

#endif
