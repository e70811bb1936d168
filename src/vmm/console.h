/*
 * The VM's console backend: where the serial port's output goes (stdout,
 * a file, nowhere) and where its input comes from (stdin, in raw mode
 * when it is a terminal).  Typing Ctrl-A then x quits the VM; Ctrl-A
 * Ctrl-A sends one Ctrl-A to the guest.
 */
#ifndef CASULO_VMM_CONSOLE_H
#define CASULO_VMM_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/config.h"
#include "vmm/event-loop.h"

struct console;

#define CONSOLE_ESCAPE_CHAR 0x01 /* Ctrl-A */
#define CONSOLE_QUIT_CHAR 'x'

/* The device that consumes input: how much it can take, and the bytes. */
struct console_sink {
	size_t (*space)(void *opaque);
	void (*push)(void *opaque, const uint8_t *buf, size_t n);
	void *opaque;
};

struct console_setup {
	enum console_mode mode;
	const char *path;	    /* CONSOLE_FILE */
	struct event_loop *loop;    /* the VMM thread's: input is read there */
	void (*quit)(void *opaque); /* Ctrl-A x */
	void *quit_opaque;
};

int console_create(const struct console_setup *setup, struct console **ret, struct err **e) MUST_CHECK;
void console_destroy(struct console *c);
void console_write(struct console *c, const uint8_t *buf, size_t n);
/* Start feeding input to sink (registers stdin with the VM's loop). */
int console_attach_input(struct console *c, const struct console_sink *sink, struct err **e) MUST_CHECK;
/* Re-arm input after the sink made room; called by the VMM loop. */
void console_poll(struct console *c);

/* Feed bytes through the escape-sequence filter: bytes for the guest go
 * to out (returns their count, at most n); sets *quit on Ctrl-A x. */
size_t console_filter_input(int *escape_pending, const uint8_t *in, size_t n, uint8_t *out, int *quit);

#endif
