/* exec: a new process in a running container (its namespaces, cgroup,
 * root, seccomp filter), from --process or from config.json's process
 * with the per-field flags of runc. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/parse.h"
#include "oci/cgroups.h"
#include "oci/container.h"
#include "oci/json-util.h"
#include "oci/state.h"
#include "oci/util.h"

static int append_strv(char ***v, size_t *n, char *const *add, size_t nadd)
{
	char **nv = realloc(*v, (*n + nadd + 1) * sizeof(char *));

	if (nv == NULL)
		return -ENOMEM;
	*v = nv;
	for (size_t i = 0; i < nadd; i++) {
		nv[*n] = strdup(add[i]);
		if (nv[*n] == NULL)
			return -ENOMEM;
		(*n)++;
	}
	nv[*n] = NULL;
	return 0;
}

/* Set KEY=value in env, replacing an entry with the same KEY. */
static int env_set(char ***env, size_t *n, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);

	for (size_t i = 0; i < *n; i++) {
		if (strncmp((*env)[i], kv, klen) == 0 && (*env)[i][klen] == '=') {
			char *copy = strdup(kv);
			if (copy == NULL)
				return -ENOMEM;
			free((*env)[i]);
			(*env)[i] = copy;
			return 0;
		}
	}
	return append_strv(env, n, (char *const *)&kv, 1);
}

/* Build the process: --process FILE, else config.json's process with the
 * flags applied over it. */
static int build_process(const struct oci_exec_opts *o, const struct oci_spec *spec, struct oci_process *p,
			 struct err **e)
{
	const struct oci_process *base = &spec->process;
	int r;

	if (o->process_file) {
		_cleanup_free_ char *text = NULL;
		size_t len;
		if ((r = read_file(o->process_file, &text, &len)) < 0)
			return err_set(e, -r, "--process '%s': read", o->process_file);
		if ((r = spec_parse_process(text, len, p, e)) < 0)
			return err_wrap(e, "--process '%s'", o->process_file);
		return 0;
	}
	if (o->n_args == 0)
		return err_setx(e, EINVAL, "exec: a command is required (or --process)");
	memset(p, 0, sizeof(*p));
	p->terminal = o->has_tty ? o->tty : false;
	p->user = base->user;
	p->user.additional_gids = NULL;
	p->user.n_additional_gids = 0;
	if (base->user.n_additional_gids) {
		p->user.additional_gids = calloc(base->user.n_additional_gids, sizeof(gid_t));
		if (p->user.additional_gids == NULL)
			return err_set(e, ENOMEM, "exec");
		memcpy(p->user.additional_gids, base->user.additional_gids,
		       base->user.n_additional_gids * sizeof(gid_t));
		p->user.n_additional_gids = base->user.n_additional_gids;
	}
	if (append_strv(&p->args, &p->n_args, o->args, o->n_args) < 0 ||
	    append_strv(&p->env, &p->n_env, base->env, base->n_env) < 0)
		return err_set(e, ENOMEM, "exec");
	for (size_t i = 0; i < o->n_env; i++) {
		if (strchr(o->env[i], '=') == NULL || o->env[i][0] == '=')
			return err_setx(e, EINVAL, "exec --env '%s': not KEY=value", o->env[i]);
		if (env_set(&p->env, &p->n_env, o->env[i]) < 0)
			return err_set(e, ENOMEM, "exec");
	}
	p->cwd = strdup(o->cwd ? o->cwd : base->cwd ? base->cwd : "/");
	p->has_caps = base->has_caps;
	memcpy(p->caps, base->caps, sizeof(p->caps));
	p->no_new_privileges = base->no_new_privileges || o->no_new_privs;
	p->apparmor_profile = base->apparmor_profile ? strdup(base->apparmor_profile) : NULL;
	p->selinux_label = base->selinux_label ? strdup(base->selinux_label) : NULL;
	p->has_oom_score_adj = false;
	if (base->n_rlimits) {
		p->rlimits = calloc(base->n_rlimits, sizeof(*p->rlimits));
		if (p->rlimits == NULL)
			return err_set(e, ENOMEM, "exec");
		memcpy(p->rlimits, base->rlimits, base->n_rlimits * sizeof(*p->rlimits));
		p->n_rlimits = base->n_rlimits;
	}
	if (p->cwd == NULL)
		return err_set(e, ENOMEM, "exec");
	if (p->cwd[0] != '/')
		return err_setx(e, EINVAL, "exec --cwd '%s': not an absolute path", p->cwd);
	return 0;
}

/* Flags that apply on top of a --process file too. */
static int apply_flags(const struct oci_exec_opts *o, struct oci_process *p, struct err **e)
{
	if (o->process_file && o->has_tty)
		p->terminal = o->tty;
	if (o->user) {
		char *colon = strchr(o->user, ':');
		uint32_t v;
		_cleanup_free_ char *uid = colon ? strndup(o->user, (size_t)(colon - o->user)) : strdup(o->user);
		if (uid == NULL || parse_u32(uid, &v) < 0)
			return err_setx(e, EINVAL, "exec --user '%s': expected uid[:gid] as numbers", o->user);
		p->user.uid = v;
		if (colon) {
			if (parse_u32(colon + 1, &v) < 0)
				return err_setx(e, EINVAL, "exec --user '%s': expected uid[:gid] as numbers", o->user);
			p->user.gid = v;
		}
	}
	if (o->n_additional_gids) {
		gid_t *g = realloc(p->user.additional_gids,
				   (p->user.n_additional_gids + o->n_additional_gids) * sizeof(gid_t));
		if (g == NULL)
			return err_set(e, ENOMEM, "exec");
		p->user.additional_gids = g;
		for (size_t i = 0; i < o->n_additional_gids; i++) {
			uint32_t v;
			if (parse_u32(o->additional_gids[i], &v) < 0)
				return err_setx(e, EINVAL, "exec --additional-gids '%s': not a gid",
						o->additional_gids[i]);
			g[p->user.n_additional_gids++] = v;
		}
	}
	for (size_t i = 0; i < o->n_caps; i++) {
		int cap = spec_cap_from_name(o->caps[i]);
		if (cap < 0)
			return err_setx(e, EINVAL, "exec --cap '%s': unknown capability", o->caps[i]);
		p->has_caps = true;
		p->caps[CAP_SET_BOUNDING] |= 1ULL << cap;
		p->caps[CAP_SET_EFFECTIVE] |= 1ULL << cap;
		p->caps[CAP_SET_PERMITTED] |= 1ULL << cap;
		/* runc: ambient only when the process has inheritable bits. */
		if (p->caps[CAP_SET_INHERITABLE])
			p->caps[CAP_SET_AMBIENT] |= 1ULL << cap;
	}
	if (o->apparmor) {
		free(p->apparmor_profile);
		p->apparmor_profile = strdup(o->apparmor);
	}
	if (o->no_new_privs)
		p->no_new_privileges = true;
	return 0;
}

int oci_exec(const struct oci_global *g, const char *id, const struct oci_exec_opts *o, int *status, struct err **e)
{
	struct oci_state *st = NULL;
	struct cgroup *sub_cg = NULL;
	struct oci_process proc;
	struct run_ctx c;
	enum oci_status s;
	pid_t pid = -1;
	int console = -1, r;
	char rootp[64];

	*status = 0;
	memset(&c, 0, sizeof(c));
	memset(&proc, 0, sizeof(proc));
	c.sock = c.child_sock = c.fifo_fd = c.exec_root_fd = c.lock_fd = -1;
	for (int k = 0; k < NS_KIND_MAX; k++)
		c.ns_fds[k] = -1;
	if ((r = state_load(g->root, id, &st, e)) < 0)
		return r;
	s = state_status(st);
	if (s == STATUS_STOPPED) {
		r = err_setx(e, EINVAL, "container '%s': cannot exec in a stopped container", id);
		goto out;
	}
	if (s == STATUS_CREATING) {
		r = err_setx(e, EBUSY, "container '%s': cannot exec in a container that is being created", id);
		goto out;
	}
	if (s == STATUS_PAUSED && !o->ignore_paused) {
		r = err_setx(e, EINVAL,
			     "container '%s': cannot exec in a paused container (use --ignore-paused to override)", id);
		goto out;
	}
	if ((r = state_load_spec(st, e)) < 0)
		goto out;
	if ((r = build_process(o, st->spec, &proc, e)) < 0 || (r = apply_flags(o, &proc, e)) < 0)
		goto out;
	log_debug("container '%s': exec: process '%s' (uid %u, cwd '%s') into init %d's namespaces", id,
		  proc.args && proc.args[0] ? proc.args[0] : "?", proc.user.uid, proc.cwd ? proc.cwd : "/",
		  (int)st->pid);
	if (proc.terminal && o->console_socket == NULL && o->detach) {
		r = err_setx(e, EINVAL,
			     "exec --tty: cannot allocate a terminal for a detached process without --console-socket");
		goto out;
	}
	if (!proc.terminal && o->console_socket) {
		r = err_setx(e, EINVAL, "exec --console-socket: given but no terminal was asked for");
		goto out;
	}
	c.g = g;
	c.id = id;
	c.spec = st->spec;
	c.proc = &proc;
	c.bundle = st->bundle;
	c.rootfs = st->rootfs;
	c.state_dir = st->dir;
	c.exec_mode = true;
	c.preserve_fds = o->preserve_fds;
	c.cg = st->cg;
	if (o->n_cgroups && st->cg && (r = cgroups_for_exec(st->cg, o->cgroups, o->n_cgroups, &sub_cg, e)) < 0)
		goto out;
	if (sub_cg)
		c.cg = sub_cg;
	c.console_needed = proc.terminal;
	c.apply_container_seccomp = true;
	c.process_label = o->process_label;
	c.no_new_keyring = true;
	c.allow_frozen = o->ignore_paused;
	if ((r = ns_open_of_pid(&c, st->pid, e)) < 0)
		goto out;
	snprintf(rootp, sizeof(rootp), "/proc/%d/root", (int)st->pid);
	c.exec_root_fd = open(rootp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.exec_root_fd < 0) {
		r = err_set(e, errno, "container '%s': open %s", id, rootp);
		goto out;
	}
	if (!proc_alive(st->pid, st->start_time)) {
		r = err_setx(e, ESRCH, "container '%s': the container exited", id);
		goto out;
	}
	if (!o->detach) {
		sigset_t old;
		container_block_signals(&old);
	}
	if ((r = container_spawn(&c, &pid, &console, o->console_socket, e)) < 0)
		goto out;
	close(c.exec_root_fd);
	c.exec_root_fd = -1;
	if (o->pid_file) {
		char v[32];
		snprintf(v, sizeof(v), "%d", (int)pid);
		if ((r = write_file_atomic(o->pid_file, v, strlen(v), 0644)) < 0) {
			r = err_set(e, -r, "pid file '%s': write", o->pid_file);
			container_kill_child(pid);
			goto out;
		}
	}
	if ((r = container_start_sync(&c, e)) < 0) {
		container_kill_child(pid);
		goto out;
	}
	if (o->detach) {
		r = 0;
		goto out;
	}
	*status = container_wait(pid, console);
	console = -1;
	r = 0;
out:
	ns_close_all(&c);
	if (c.exec_root_fd >= 0)
		close(c.exec_root_fd);
	if (console >= 0)
		close(console);
	spec_process_clear(&proc);
	cgroup_free(sub_cg);
	state_free(st);
	return r;
}
