/*
 * casulo-vmm --selinux-label: the VMM in its own SELinux MCS category pair,
 * its disks labelled with the same pair while it runs (sVirt; docs/vmm.md,
 * "Confinement: SELinux (sVirt)").
 */
#ifndef CASULO_VMM_SVIRT_H
#define CASULO_VMM_SVIRT_H

#include <stdbool.h>

#include "common/err.h"
#include "common/macro.h"
#include "vmm/config.h"

/* The environment variable that tells the VMM it is the labelled child:
 * its value is the context the parent chose. */
#define VMM_SVIRT_ENV "CASULO_VMM_SELINUX_CONTEXT"

/* --selinux-label's form: "dynamic" or USER:ROLE:TYPE:LEVEL. */
int vmm_svirt_parse(const char *arg, struct err **e) MUST_CHECK;

/* Whether this process is the labelled VMM a parent started (and the
 * marker gone from its environment); -1 with *e when the marker names a
 * context this process does not run in. */
int vmm_svirt_is_child(struct err **e) MUST_CHECK;

/* Label cfg's disks with the VM's pair (with --restore DIR and no --disk,
 * those of the snapshot's configuration, read ahead; and DIR's files with
 * the content context every VM may read, which they keep), run argv[0]'s binary again
 * (/proc/self/exe) in the chosen context with argv, forward SIGINT,
 * SIGTERM and SIGHUP to it, wait for it and put the labels back: the exit
 * status to leave with (the child's, 128+N when signal N killed it; 1 with
 * a one-line message on stderr when labelling or the start failed, nothing
 * left relabelled).  restore_dir is NULL but for --restore; incoming for
 * --incoming, whose source's disks are not known here (only cfg's are
 * labelled). */
int vmm_svirt_run(const char *label, const struct vm_config *cfg, const char *restore_dir, bool incoming, char **argv);

#endif
