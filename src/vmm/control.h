/*
 * The control socket (--control-socket PATH): one-line text commands that
 * change a running VM, until the API (issue 5) replaces it.
 */
#ifndef CASULO_VMM_CONTROL_H
#define CASULO_VMM_CONTROL_H

#include <stddef.h>

#include "common/err.h"

struct vm;
struct control;

/* Listen on path and serve clients on the VM's event loop. */
int control_create(struct vm *vm, const char *path, struct control **ret, struct err **e);
void control_destroy(struct control *c);
/* Run one command (no newline) and write its one-line reply, newline
 * included, into reply. */
void control_execute(struct vm *vm, const char *line, char *reply, size_t len);

#endif
