/* NULL-terminated vectors of heap strings (argv, env, capability lists):
 * one owner frees the strings and the vector together. */
#ifndef CASULO_COMMON_STRV_H
#define CASULO_COMMON_STRV_H

#include <stddef.h>

/* Free every string, then the vector; NULL is nothing. */
void strv_free(char **v);
/* The number of strings before the NULL; 0 for NULL. */
size_t strv_length(char *const *v);
/* Duplicate a NULL-terminated vector; NULL on allocation failure. */
char **strv_dup(char *const *v);

#endif
