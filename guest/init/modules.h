/*
 * Loading the kernel modules of a directory in dependency order, read from
 * each module's own .modinfo section ("name=", "depends="): the guest has
 * no modules.dep.  The parsing and ordering functions are pure and
 * unit-tested; modules_load_dir() does the I/O.
 */
#ifndef CASULO_GUEST_MODULES_H
#define CASULO_GUEST_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define MODULES_NAME_MAX 64
#define MODULES_DEPS_MAX 256

/*
 * Find the .modinfo section of an ELF64 little-endian object.  Returns 0
 * and sets *info and *len, or -EINVAL (not such an ELF, or malformed) or
 * -ENOENT (no .modinfo).  Every offset is checked against len.
 */
int modules_find_modinfo(const void *elf, size_t elf_len, const char **info, size_t *len);

/*
 * Copy the value of the first "key=value" string of a .modinfo section
 * into val.  Returns 1 when found, 0 when absent, -ENAMETOOLONG when it
 * does not fit.
 */
int modules_modinfo_get(const char *info, size_t len, const char *key, char *val, size_t size);

/* A module's name with '-' turned into '_' (the kernel's canonical form). */
void modules_canonical_name(char *name);

struct module {
	char name[MODULES_NAME_MAX];
	char depends[MODULES_DEPS_MAX]; /* comma-separated names, canonical */
	char path[256];
};

/*
 * Order mods so each comes after the modules it depends on: order[] gets
 * indexes into mods.  Dependencies not among mods are skipped, and cycles
 * are broken; either is reported once on report (may be NULL).  Returns
 * the number of problems found (0 when all is well).
 */
int modules_order(const struct module *mods, size_t n, size_t *order, FILE *report);

/*
 * Load every *.ko in dir, dependencies first.  A module already loaded
 * (EEXIST) is fine; other failures are printed on report and loading goes
 * on.  Returns the number of modules loaded, or -errno if dir cannot be
 * read.  *failed gets the number of failures.
 */
int modules_load_dir(const char *dir, FILE *report, int *failed);

#endif
