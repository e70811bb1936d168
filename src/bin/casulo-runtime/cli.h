/* casulo-runtime's command line: runc's verbs and flags, one file per verb,
 * each a thin wrapper over one libcasulo-oci call. */
#ifndef CASULO_RUNTIME_CLI_H
#define CASULO_RUNTIME_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "common/err.h"
#include "oci/oci.h"

/* Report an error once: into the log (text or JSON), and on stderr as
 * runc does when the log is a file.  Returns runc's exit code, 1. */
int cli_fail(struct err *e);
/* A usage error ("casulo-runtime kill: ..."): exit code 1. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Go-style boolean flag value: NULL (flag alone) is true. */
bool cli_bool(const char *arg);
/* Parse a verb's options with getopt_long_only, stopping at the first
 * argument (urfave/cli's way); returns optind or -1 after printing. */
int cli_getopt(const char *verb, int argc, char **argv, const struct option *opts,
	       int (*handle)(int c, const char *arg, void *data), void *data);

/* create and run share their flags (create.c). */
int cli_parse_create(const char *verb, int argc, char **argv, bool run, struct oci_create_opts *o, const char **id);
/* The one container id a verb takes, or a usage error (-1). */
int cli_one_id(const char *verb, int argc, char **argv, int first, const char **id);

#define VERB(name) int cmd_##name(const struct oci_global *g, int argc, char **argv)
VERB(create);
VERB(start);
VERB(run);
VERB(state);
VERB(kill);
VERB(delete);
VERB(exec);
VERB(list);
VERB(ps);
VERB(pause);
VERB(resume);
VERB(update);
VERB(features);
VERB(spec);

#endif
