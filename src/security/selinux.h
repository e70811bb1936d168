/*
 * SELinux for Casulo, on Debian's libselinux: whether the host has it, the
 * policy's contexts for virtual machines, MCS category pairs chosen so that
 * no two running VMs share one (sVirt), exec labels, and files relabelled
 * and restored.  casulo-vmm's --selinux-label and casulo-runtime's
 * process.selinuxLabel both go through here (docs/vmm.md, "Confinement:
 * SELinux (sVirt)").
 */
#ifndef CASULO_SELINUX_H
#define CASULO_SELINUX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/macro.h"

/* MCS categories c0..c1023, as the reference policy defines them. */
#define SEL_CATEGORIES 1024

/* One MCS category pair, a < b, as "s0:ca,cb". */
struct sel_pair {
	unsigned a, b;
};

/* Whether SELinux is enabled on this host (a policy loaded). */
bool sel_enabled(void);

/* The category pair of a context's level ("u:r:t:s0:c3,c7" gives {3, 7});
 * false when the level is not exactly two single categories. */
bool sel_context_pair(const char *context, struct sel_pair *pair);

/* A pair none of used[] is, from random numbers of rand_fn (a uniform
 * unsigned); -EAGAIN when every try met a used pair.  Pure but for rand_fn. */
int sel_pair_pick(const struct sel_pair *used, size_t nused, unsigned (*rand_fn)(void),
		  struct sel_pair *out) MUST_CHECK;

/* Append the pairs of every running process's context (/proc/PID/attr/
 * current under proc_dir) to *used (grown with realloc). */
int sel_pairs_in_use(const char *proc_dir, struct sel_pair **used, size_t *nused, struct err **e) MUST_CHECK;

/* The context ctx with its level replaced by "s0:ca,cb" (or by level when
 * not NULL), newly allocated in *out. */
int sel_context_with_pair(const char *ctx, const struct sel_pair *pair, char **out, struct err **e) MUST_CHECK;
int sel_context_with_level(const char *ctx, const char *level, char **out, struct err **e) MUST_CHECK;

/* Whether s has the form USER:ROLE:TYPE:LEVEL (four non-empty fields, the
 * level possibly with colons of its own: "s0:c1,c2"). */
bool sel_context_well_formed(const char *s);

/* The policy's context for VM processes (svirt_t) and for their images
 * (svirt_image_t), from libselinux's virtual_domain_context and
 * virtual_image_context files. */
int sel_virt_contexts(char **domain, char **image, struct err **e) MUST_CHECK;
/* The policy's context for what every VM may read and none may write
 * (virt_content_t at s0), the second line of virtual_image_context: what
 * libvirt gives read-only shared images. */
int sel_virt_content_context(char **content, struct err **e) MUST_CHECK;

/* Whether the loaded policy accepts the context (security_check_context). */
int sel_context_check(const char *what, const char *ctx, struct err **e) MUST_CHECK;

/* The next exec runs in ctx (setexeccon); what names the setting in the
 * message. */
int sel_set_exec(const char *what, const char *ctx, struct err **e) MUST_CHECK;

/* Files relabelled for a while, their old labels kept to put back. */
struct sel_relabel {
	size_t n;
	struct {
		char *path, *old;
	} * files;
};

/* Label path with ctx, keeping its old label in r; what names the file in
 * the message ("disk 'a.img'"). */
int sel_relabel_file(struct sel_relabel *r, const char *what, const char *path, const char *ctx,
		     struct err **e) MUST_CHECK;

/* Put back every old label in r (last first) and free it; failures are
 * logged, one line each, and counted in the return value. */
int sel_relabel_restore(struct sel_relabel *r);
/* Keep the new labels: forget the old ones and free r. */
void sel_relabel_keep(struct sel_relabel *r);

/* A lock file held while a pair is chosen and until the process that uses
 * it has exec'd: two starts at once cannot take the same pair.  Returns
 * its fd. */
int sel_pair_lock(const char *path, struct err **e) MUST_CHECK;

#endif
