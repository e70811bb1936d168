/* Resources: checked against the host's layout, then written per version
 * (v1.c, v2.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup/cgroup-internal.h"

int cgroup_check(const struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	/* runc's rule: cgroup2 keys only where cgroup2 is the whole layout
	 * (on a hybrid host they would bypass the v1 controllers). */
	if (r->n_unified && cg->mode != CGROUP_MODE_V2)
		return err_setx(e, EINVAL,
				"invalid configuration: cannot use unified on cgroup v1 (cgroup '%s': this host is %s)",
				cg->rel, cgroup_mode_name(cg->mode));
	return 0;
}

int cgroup_set(struct cgroup *cg, const struct cgroup_resources *r, struct err **e)
{
	int rc;

	if ((rc = cgroup_check(cg, r, e)) < 0)
		return rc;
	if (cg->mode == CGROUP_MODE_V2)
		return cgroup_v2_set(cg, cg->unified.path, r, false, e);
	if ((rc = cgroup_v1_set(cg, r, e)) < 0)
		return rc;
	if (cg->mode == CGROUP_MODE_HYBRID && cg->unified.path)
		return cgroup_v2_set(cg, cg->unified.path, r, true, e);
	return 0;
}

void cgroup_resources_clear(struct cgroup_resources *r)
{
	free(r->devices);
	free(r->cpu_cpus);
	free(r->cpu_mems);
	free(r->blkio_weight_devices);
	for (int i = 0; i < CGROUP_THROTTLE_KINDS; i++)
		free(r->blkio_throttle[i]);
	for (size_t i = 0; i < r->n_hugepages; i++)
		free(r->hugepages[i].page_size);
	free(r->hugepages);
	for (size_t i = 0; i < r->n_unified; i++) {
		free(r->unified[i].key);
		free(r->unified[i].value);
	}
	free(r->unified);
	memset(r, 0, sizeof(*r));
}
