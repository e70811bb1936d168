/* casulo-runtime's command line: runc's verbs and flags, one file per verb,
 * each a thin wrapper over one libcasulo-oci call. */
#ifndef CASULO_RUNTIME_CLI_H
#define CASULO_RUNTIME_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"
#include "oci/oci.h"
#include "vmc/vmc.h"

/* VM mode (docs/vm-containers.md): the default when started as
 * casulo-runtime-vm or with --vm; --vmm and --guest-dir say where. */
extern struct vmc_options cli_vm;

/* Report an error once: into the log (text or JSON), and on stderr as
 * runc does when the log is a file.  Returns runc's exit code, 1. */
int cli_fail(struct err *e);
/* The same with another exit status and a prefix ("exec failed: "). */
int cli_fail_with(struct err *e, int status, const char *prefix);
/* A usage error ("casulo-runtime kill: ..."): exit code 1. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Go-style boolean flag value: NULL (flag alone) is true. */
bool cli_bool(const char *arg);
/* Parse a verb's options with getopt_long_only, stopping at the first
 * argument (urfave/cli's way); returns optind or -1 after printing. */
int cli_getopt(const char *verb, int argc, char **argv, const struct option *opts,
	       int (*handle)(int c, const char *arg, void *data), void *data);

/* help.c: runc-shaped help of the program and of a verb (3 and "No help
 * topic" for an unknown one), and the version's three lines. */
void cli_help(FILE *out);
int cli_help_verb(const char *verb, FILE *out);
void cli_version(FILE *out);

/* create and run share their flags (create.c). */
int cli_parse_create(const char *verb, int argc, char **argv, bool run, struct oci_create_opts *o, const char **id);
/* Does create or run's container go in a VM (cli_vm, its annotation)? */
int cli_wants_vm(const struct oci_create_opts *o, bool *vm, struct err **e);
/* The one container id a verb takes, or a usage error (-1). */
int cli_one_id(const char *verb, int argc, char **argv, int first, const char **id);

#define VERB(name) int cmd_##name(const struct oci_global *g, int argc, char **argv)
VERB(checkpoint);
VERB(create);
VERB(restore);
VERB(start);
VERB(run);
VERB(state);
VERB(kill);
VERB(delete);
VERB(events);
VERB(exec);
VERB(list);
VERB(ps);
VERB(pause);
VERB(resume);
VERB(update);
VERB(features);
VERB(spec);

#endif
