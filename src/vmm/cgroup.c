#include "vmm/cgroup.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "common/log.h"

struct vmm_cgroup {
	char *path;
	struct cgroup *cg;
	struct cgroup *origin; /* where the process was */
	bool made;	       /* this VMM created the cgroup */
	int64_t mem_limit;     /* -1: none */
};

static int check_memory(const char *path, int64_t limit, uint64_t guest_bytes, struct err **e)
{
	uint64_t need = guest_bytes + VMM_CGROUP_OVERHEAD(guest_bytes);

	if (limit < 0 || guest_bytes == 0 || (uint64_t)limit >= need)
		return 0;
	return err_setx(e, EINVAL,
			"--cgroup '%s': memory=%llu MiB is below what the VM needs: %llu MiB of guest RAM and "
			"%llu MiB for the VMM (at least %llu MiB)",
			path, (unsigned long long)limit >> 20, (unsigned long long)guest_bytes >> 20,
			(unsigned long long)VMM_CGROUP_OVERHEAD(guest_bytes) >> 20, (unsigned long long)need >> 20);
}

static void vmm_cgroup_free(struct vmm_cgroup *vc)
{
	if (vc == NULL)
		return;
	cgroup_free(vc->cg);
	cgroup_free(vc->origin);
	free(vc->path);
	free(vc);
}

/* Does any directory of cg exist already? */
static bool cgroup_exists(const struct cgroup *cg)
{
	struct stat st;

	for (size_t i = 0; i < cgroup_n_dirs(cg); i++)
		if (stat(cgroup_dir_at(cg, i), &st) == 0)
			return true;
	return false;
}

/* Remove the directories of cg (empty ones: the VMM has left). */
static void remove_dirs(const struct cgroup *cg, const char *path)
{
	for (size_t i = cgroup_n_dirs(cg); i-- > 0;)
		if (rmdir(cgroup_dir_at(cg, i)) < 0 && errno != ENOENT)
			log_warn("cgroup '%s': rmdir %s: %s", path, cgroup_dir_at(cg, i), strerror(errno));
}

int vmm_cgroup_enter(const char *spec, uint64_t guest_bytes, struct vmm_cgroup **ret, struct err **e)
{
	struct cgroup_resources res = {0};
	struct vmm_cgroup *vc = calloc(1, sizeof(*vc));
	int r;

	if (vc == NULL)
		return err_set(e, ENOMEM, "--cgroup");
	r = cgroup_limits_parse(spec, "path", &vc->path, &res, e);
	if (r == 0 && (vc->path == NULL || vc->path[0] == '\0'))
		r = err_setx(e, EINVAL, "--cgroup '%s': no cgroup path (PATH[,memory=SIZE,...])", spec);
	if (r < 0) {
		err_wrap(e, "--cgroup");
		goto fail;
	}
	vc->mem_limit = res.has_mem_limit ? res.mem_limit : -1;
	if ((r = check_memory(vc->path, vc->mem_limit, guest_bytes, e)) < 0 ||
	    (r = cgroup_resolve(".", &vc->origin, e)) < 0 || (r = cgroup_resolve(vc->path, &vc->cg, e)) < 0 ||
	    (r = cgroup_check(vc->cg, &res, e)) < 0)
		goto fail;
	vc->made = !cgroup_exists(vc->cg);
	if ((r = cgroup_make(vc->cg, NULL, e)) < 0)
		goto fail;
	if ((r = cgroup_set(vc->cg, &res, e)) < 0 || (r = cgroup_enter(vc->cg, getpid(), e)) < 0) {
		if (vc->made)
			remove_dirs(vc->cg, vc->path);
		goto fail;
	}
	log_info("cgroup '%s': the VMM runs there%s", vc->path, vc->made ? " (made for it)" : "");
	cgroup_resources_clear(&res);
	*ret = vc;
	return 0;
fail:
	cgroup_resources_clear(&res);
	vmm_cgroup_free(vc);
	return r;
}

int vmm_cgroup_check_memory(const struct vmm_cgroup *vc, uint64_t guest_bytes, struct err **e)
{
	return vc ? check_memory(vc->path, vc->mem_limit, guest_bytes, e) : 0;
}

const char *vmm_cgroup_path(const struct vmm_cgroup *vc)
{
	return vc ? vc->path : NULL;
}

void vmm_cgroup_leave(struct vmm_cgroup *vc)
{
	struct err *e = NULL;

	if (vc == NULL)
		return;
	if (vc->made) {
		if (cgroup_enter(vc->origin, getpid(), &e) < 0) {
			log_warn("cgroup '%s': left in place: %s", vc->path, e->msg);
			err_free(&e);
		} else {
			remove_dirs(vc->cg, vc->path);
		}
	}
	vmm_cgroup_free(vc);
}
