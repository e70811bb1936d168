/* casulod's start-up and shutdown (daemon.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/events.h"
#include "daemon/internal.h"
#include "image/store.h"
#include "oci/util.h"
#include "schema/schema.h"

extern const char casulod_api_schemas[];
extern const size_t casulod_api_schemas_len;

static char *join(const char *a, const char *b)
{
	char *p = NULL;

	return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* The directory of this executable: the other programs sit beside it. */
static char *self_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return strdup(".");
	buf[n] = '\0';
	return strdup(dirname(buf));
}

static char *pick(const char *given, const char *dir, const char *name)
{
	return given ? strdup(given) : join(dir, name);
}

static int make_dir(const char *path, mode_t mode, struct err **e)
{
	if (mkdir_p(path, mode) < 0)
		return err_set(e, errno, "directory '%s'", path);
	return 0;
}

/* One casulod per state directory: a write lock on STATE/lock for
 * casulod's life.  A POSIX record lock, not flock(): a process casulod
 * forks (a shim on its way to exec) does not inherit it, so a casulod
 * killed at any moment leaves its lock to the next one at once. */
static int lock_dir(const char *dir, int *fd_out, struct err **e)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char *path = join(dir, "lock"), pid[32] = "";
	int fd, r;

	if (path == NULL)
		return err_set(e, ENOMEM, "lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = err_set(e, errno, "lock '%s'", path);
		free(path);
		return r;
	}
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		if (errno == EAGAIN || errno == EACCES) {
			ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			r = err_setx(e, EBUSY, "'%s' is in use by another casulod%s%s%s", dir, pid[0] ? " (pid " : "",
				     pid, pid[0] ? ")" : "");
		} else {
			r = err_set(e, errno, "lock '%s'", path);
		}
		close(fd);
		free(path);
		return r;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
		log_debug("lock '%s': %s", path, strerror(errno));
	free(path);
	*fd_out = fd;
	return 0;
}

static int setup_paths(struct daemon *d, struct err **e)
{
	const struct daemon_config *c = &d->cfg;
	char *self = self_dir(), *guest_env = getenv("CASULO_GUEST_DIR");
	int r = 0;

	d->state_dir = strdup(c->state_dir ? c->state_dir : DAEMON_DEFAULT_STATE_DIR);
	d->run_dir = strdup(c->run_dir ? c->run_dir : DAEMON_DEFAULT_RUN_DIR);
	d->image_root = strdup(c->image_root ? c->image_root : STORE_DEFAULT_ROOT);
	d->socket_path = c->socket_path ? strdup(c->socket_path) : join(d->run_dir, DAEMON_SOCKET_NAME);
	d->vmm = pick(c->vmm, self, "casulo-vmm");
	d->runtime = pick(c->runtime, self, "casulo-runtime");
	d->shim = pick(c->shim, self, "casulod-shim");
	d->guest_dir = c->guest_dir ? strdup(c->guest_dir) : guest_env ? strdup(guest_env) : join(self, "guest");
	d->snapshot_dir = c->snapshot_dir ? strdup(c->snapshot_dir) : join(d->state_dir, "snapshots");
	free(self);
	if (!d->state_dir || !d->run_dir || !d->image_root || !d->socket_path || !d->vmm || !d->runtime || !d->shim ||
	    !d->guest_dir || !d->snapshot_dir)
		return err_set(e, ENOMEM, "casulod");
	if (access(d->shim, X_OK) < 0)
		return err_set(e, errno, "the shim '%s' (--shim)", d->shim);
	for (int i = 0; i < 2 && r == 0; i++) {
		const char *base = i ? d->run_dir : d->state_dir;
		char *a = join(base, "instances"), *b = join(base, i ? "runtime" : "logs");
		/* The run directory holds the socket: its group must get through. */
		r = make_dir(base, i ? 0711 : 0700, e);
		if (r == 0 && i && chmod(base, 0711) < 0)
			r = err_set(e, errno, "directory '%s'", base);
		if (r == 0)
			r = make_dir(a, 0700, e);
		if (r == 0)
			r = make_dir(b, 0700, e);
		free(a);
		free(b);
	}
	if (r == 0)
		r = make_dir(d->snapshot_dir, 0700, e);
	return r;
}

static void *signal_thread(void *arg)
{
	struct daemon *d = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	while (sigwait(&set, &sig) == 0) {
		if (sig == SIGHUP)
			continue;
		log_info("signal %d: stopping (instances keep running)", sig);
		atomic_store(&d->stopping, true);
		loop_stop(d->loop);
		break;
	}
	return NULL;
}

static void *autostart_thread(void *arg)
{
	instances_autostart(arg);
	return NULL;
}

static void daemon_free(struct daemon *d)
{
	store_db_close(d->db);
	schema_doc_free(d->schemas);
	if (d->state_lock_fd >= 0)
		close(d->state_lock_fd);
	free(d->state_dir);
	free(d->run_dir);
	free(d->socket_path);
	free(d->image_root);
	free(d->vmm);
	free(d->runtime);
	free(d->shim);
	free(d->guest_dir);
	free(d->snapshot_dir);
	/* Only before any thread runs: instances, operations, the loop and
	 * events are left to the exit. */
	free(d);
}

int daemon_run(const struct daemon_config *c, struct err **e)
{
	struct daemon *d = calloc(1, sizeof(*d));
	char *db = NULL, *stored_boot = NULL;
	pthread_t sig_thread, autostart;
	int run_lock_fd = -1, r;
	double load_start;
	sigset_t set;

	if (d == NULL)
		return err_set(e, ENOMEM, "casulod");
	d->cfg = *c;
	d->state_lock_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	d->started_at = proc_now();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

#define STAGE(what) log_debug("start-up: %s at %.1f ms", what, (proc_monotonic() - c->exec_time) * 1000.0)
	STAGE("main");
	if ((r = setup_paths(d, e)) < 0 || (r = lock_dir(d->state_dir, &d->state_lock_fd, e)) < 0 ||
	    (r = lock_dir(d->run_dir, &run_lock_fd, e)) < 0)
		goto out;
	proc_boot_id(d->boot_id);
	if ((db = join(d->state_dir, "casulod.db")) == NULL) {
		r = err_set(e, ENOMEM, "casulod");
		goto out;
	}
	if ((r = store_db_open(db, &d->db, e)) < 0 || (r = store_db_get_meta(d->db, "boot_id", &stored_boot, e)) < 0)
		goto out;
	d->first_start_since_boot = stored_boot == NULL || strcmp(stored_boot, d->boot_id) != 0;
	if (d->first_start_since_boot && (r = store_db_set_meta(d->db, "boot_id", d->boot_id, e)) < 0)
		goto out;
	STAGE("database open");
	d->events = events_new();
	d->ops = ops_new(d);
	if (d->events == NULL || d->ops == NULL) {
		r = err_set(e, ENOMEM, "casulod");
		goto out;
	}
	if ((d->loop = loop_new(d, e)) == NULL) {
		r = -err_code(*e);
		goto out;
	}
	/* Take back what runs before serving anything. */
	load_start = proc_monotonic();
	if ((r = instances_load(d, e)) < 0)
		goto out;
	d->reattach.ms = (proc_monotonic() - c->exec_time) * 1000.0;
	d->reattach.load_ms = (proc_monotonic() - load_start) * 1000.0;
	STAGE("instances loaded and reattached");
	if ((r = schema_doc_load(casulod_api_schemas, casulod_api_schemas_len, &d->schemas, e)) < 0)
		goto out;
	STAGE("API document compiled");
	if ((r = http_start(d, e)) < 0)
		goto out;
	log_info("ready on %s%s%s: %zu instances, %d running found again, %d ended meanwhile, in %.1f ms",
		 d->socket_path, c->listen ? " and https://" : "", c->listen ? c->listen : "", d->n_instances,
		 d->reattach.found, d->reattach.lost, d->reattach.ms);
	if (pthread_create(&sig_thread, NULL, signal_thread, d) != 0) {
		r = err_set(e, EAGAIN, "casulod: signal thread");
		goto out;
	}
	pthread_detach(sig_thread);
	if (pthread_create(&d->sampler, NULL, usage_sampler, d) == 0)
		d->sampler_started = true;
	if (d->first_start_since_boot && pthread_create(&autostart, NULL, autostart_thread, d) == 0)
		pthread_detach(autostart);
	loop_run(d->loop);
	atomic_store(&d->stopping, true);
	http_stop(d);
	if (d->sampler_started)
		pthread_join(d->sampler, NULL);
	/* Operation and autostart threads are detached and may still use the
	 * paths and the database: everything is left to the exit (freeing the
	 * image root here once had such a thread create a store named by the
	 * freed memory). */
	close(run_lock_fd);
	free(db);
	free(stored_boot);
	return 0;
out:
	if (run_lock_fd >= 0)
		close(run_lock_fd);
	free(db);
	free(stored_boot);
	daemon_free(d);
	return r;
}
