/* Help texts, laid out as runc's (urfave/cli's): NAME, USAGE, a
 * description, OPTIONS; `help COMMAND`, `COMMAND --help` and `--help`
 * print them, and `--version` the three lines go-runc parses. */
#include <stdio.h>
#include <string.h>

#include "casulo-config.h"
#include "casulo-version.h"
#include "cli.h"
#include "common/macro.h"

#define SPEC_VERSION "1.1.0"

struct opt_help {
	const char *flags; /* "--bundle value, -b value" */
	const char *text;
};

struct verb_help {
	const char *name;
	const char *summary;
	const char *args; /* after "[command options]" */
	const char *description;
	struct opt_help opts[24];
};

#define CREATE_OPTS                                                                                                    \
	{"--bundle value, -b value",                                                                                   \
	 "the bundle directory (config.json and the root filesystem); default: the current "                           \
	 "directory"},                                                                                                 \
	    {"--config value, -f value", "the configuration file, relative to the bundle (default: config.json)"},     \
	    {"--console-socket value",                                                                                 \
	     "an AF_UNIX socket to send the master end of the container's pseudoterminal to"},                         \
	    {"--pid-file value", "write the container process's pid to this file"},                                    \
	    {"--no-pivot", "move the root filesystem with MS_MOVE and chroot instead of pivot_root (a rootfs on a "    \
			   "ramdisk needs it)"},                                                                       \
	    {"--no-new-keyring", "keep the caller's session keyring instead of a new one for the container"},          \
	{                                                                                                              \
		"--preserve-fds value", "pass N more file descriptors to the container (after stdio and $LISTEN_FDS) " \
					"(default: 0)"                                                                 \
	}

static const struct verb_help verbs[] = {
    {"create",
     "create a container",
     "<container-id>",
     "The container is made (namespaces, cgroups, mounts) and waits for `start` to run its process.",
     {CREATE_OPTS}},
    {"start", "run the user process of a created container", "<container-id>", NULL, {{0}}},
    {"run",
     "create and start a container",
     "<container-id>",
     "Without --detach the runtime waits for the process and exits with its status (128+N for signal N).",
     {CREATE_OPTS,
      {"--detach, -d", "return once the process runs"},
      {"--keep", "keep the container's state once its process exits"},
      {"--no-subreaper", "accepted for runc's callers; the runtime reaps its own children"}}},
    {"state", "print the state of a container", "<container-id>", NULL, {{0}}},
    {"kill",
     "send a signal (default: SIGTERM) to the container's init",
     "<container-id> [signal]",
     "The signal is a name (KILL, SIGKILL, RTMIN+3) or a number; 0 only checks that the container lives.",
     {{"--all, -a", "send the signal to every process of the container"}}},
    {"delete",
     "delete a container and what it holds",
     "<container-id>",
     NULL,
     {{"--force, -f", "delete a running container too, killing its processes (SIGKILL)"}}},
    {"events",
     "print the container's statistics (cpu, memory, pids, I/O, hugetlb) and OOM events",
     "<container-id>",
     "One JSON object per line: the container's statistics every interval, and OOM events as they happen, until "
     "the container's cgroup is gone.",
     {{"--interval value", "the statistics' interval, a duration such as 100ms or 5s (default: 5s)"},
      {"--stats", "print the statistics once and exit"}}},
    {"exec",
     "run a new process inside a container",
     "<container-id> <command> [args...]  ||  -p process.json <container-id>",
     NULL,
     {{"--console-socket value", "an AF_UNIX socket to send the master end of the process's pseudoterminal to"},
      {"--cwd value", "the working directory in the container"},
      {"--env value, -e value", "set an environment variable (KEY=value)"},
      {"--tty, -t", "give the process a pseudoterminal"},
      {"--user value, -u value", "uid[:gid] to run as"},
      {"--additional-gids value, -g value", "an additional group id"},
      {"--process value, -p value", "a process.json describing the process"},
      {"--detach, -d", "return once the process runs"},
      {"--pid-file value", "write the process's pid to this file"},
      {"--process-label value", "the SELinux label of the process"},
      {"--apparmor value", "the AppArmor profile of the process"},
      {"--no-new-privs", "set no_new_privs for the process"},
      {"--cap value, -c value", "add a capability"},
      {"--preserve-fds value", "pass N more file descriptors to the process (default: 0)"},
      {"--cgroup value", "run the process in an existing sub-cgroup: [<controller>[,<controller>]:]<path>"},
      {"--ignore-paused", "wait for a paused container to be resumed instead of failing"}}},
    {"list",
     "list the containers",
     "",
     NULL,
     {{"--format value, -f value", "table or json (default: \"table\")"},
      {"--quiet, -q", "print the container ids only"}}},
    {"ps",
     "list the processes of a container",
     "<container-id> [ps options]",
     NULL,
     {{"--format value, -f value", "table or json (default: \"table\")"}}},
    {"pause", "freeze every process of a container", "<container-id>", NULL, {{0}}},
    {"resume", "thaw a paused container", "<container-id>", NULL, {{0}}},
    {"update",
     "change the resources of a running container",
     "<container-id>",
     "The resources come from a linux.resources JSON object (--resources) or from the flags; with a file the "
     "flags are ignored.  Sizes take suffixes (512m, 1.5g); 0 leaves a value as it is.",
     {{"--resources value, -r value", "a file holding linux.resources, or - for the standard input"},
      {"--blkio-weight value", "block I/O weight, 10 to 1000"},
      {"--cpu-period value", "CFS period in microseconds"},
      {"--cpu-quota value", "CFS quota in microseconds per period (-1: none)"},
      {"--cpu-share value", "CPU shares"},
      {"--cpu-rt-period value", "realtime period in microseconds"},
      {"--cpu-rt-runtime value", "realtime runtime in microseconds per period"},
      {"--cpu-idle value", "1 for SCHED_IDLE, 0 for the default"},
      {"--cpuset-cpus value", "the CPUs to use (0-3,6)"},
      {"--cpuset-mems value", "the memory nodes to use"},
      {"--memory value", "memory limit in bytes (-1: none)"},
      {"--memory-reservation value", "memory soft limit in bytes"},
      {"--memory-swap value", "memory plus swap limit in bytes (-1: none)"},
      {"--kernel-memory value", "kernel memory limit (where the kernel still has it)"},
      {"--kernel-memory-tcp value", "kernel TCP buffer limit"},
      {"--pids-limit value", "the most processes (-1: none)"},
      {"--l3-cache-schema value", "Intel RDT L3 cache schema (not supported)"},
      {"--mem-bw-schema value", "Intel RDT memory bandwidth schema (not supported)"}}},
    {"features", "print the features this runtime supports (JSON)", "", NULL, {{0}}},
    {"spec",
     "write a default config.json",
     "",
     "runc's template: a shell as process, pid, network, ipc, uts and mount namespaces, a read-only root.",
     {{"--bundle value, -b value", "the directory to write config.json in (default: the current directory)"},
      {"--rootless", "a configuration for a rootless container: a user namespace, the host's network"}}},
    {"checkpoint",
     "checkpoint a running container (with CRIU)",
     "<container-id>",
     NULL,
     {{"--image-path value", "where to write the checkpoint (default: ./checkpoint)"},
      {"--work-path value", "where CRIU writes its logs and work files"},
      {"--parent-path value", "the previous (pre-dump) checkpoint, relative to the image path"},
      {"--leave-running", "leave the container running after the checkpoint"},
      {"--tcp-established", "checkpoint established TCP connections"},
      {"--ext-unix-sk", "allow external Unix sockets"},
      {"--shell-job", "allow a shell job"},
      {"--lazy-pages", "not supported"},
      {"--file-locks", "checkpoint file locks"},
      {"--pre-dump", "dump the memory only, to be followed by a checkpoint"},
      {"--manage-cgroups-mode value", "soft, full, strict or ignore"},
      {"--empty-ns value", "a namespace to leave empty (network)"},
      {"--auto-dedup", "deduplicate the images against the parent's"}}},
    {"restore",
     "restore a container from a checkpoint (with CRIU)",
     "<container-id>",
     NULL,
     {{"--console-socket value", "refused: a container with a terminal cannot be checkpointed"},
      {"--image-path value", "the checkpoint to restore (default: ./checkpoint)"},
      {"--work-path value", "where CRIU writes its logs and work files"},
      {"--tcp-established", "restore established TCP connections"},
      {"--ext-unix-sk", "allow external Unix sockets"},
      {"--shell-job", "allow a shell job"},
      {"--file-locks", "restore file locks"},
      {"--manage-cgroups-mode value", "soft, full, strict or ignore"},
      {"--bundle value, -b value", "the bundle directory (default: the current directory)"},
      {"--detach, -d", "return once the container runs"},
      {"--pid-file value", "write the restored process's pid to this file"},
      {"--no-subreaper", "accepted for runc's callers"},
      {"--no-pivot", "see create"},
      {"--empty-ns value", "a namespace that was left empty (network)"},
      {"--auto-dedup", "deduplicate the images"},
      {"--lazy-pages", "not supported"}}},
};

static const struct opt_help global_opts[] = {
    {"--debug", "log debug records (each step of a create, run or exec)"},
    {"--log value", "write the log to this file instead of the standard error"},
    {"--log-format value", "text or json (default: \"text\")"},
    {"--root value", "the root of the containers' state (default: \"" OCI_DEFAULT_ROOT "\")"},
    {"--criu value", "the criu binary checkpoint and restore run (default: \"criu\")"},
    {"--systemd-cgroup", "the systemd cgroup driver (refused: not implemented)"},
    {"--cgroup-manager value", "crun's: cgroupfs, systemd or disabled"},
    {"--rootless value", "accepted for runc's callers"},
    {"--vm", "run containers in their own VM unless their annotation io.casulo.vm says off (the default as "
	     "casulo-runtime-vm; io.casulo.vm=on asks for one anyway)"},
    {"--vmm value", "the casulo-vmm binary VM mode runs (default: beside this program)"},
    {"--guest-dir value", "the guest kernel and initrd VM mode boots (default: the build's guest)"},
    {"--help, -h", "show help"},
    {"--version, -v", "print the version"},
};

static void print_opts(FILE *out, const struct opt_help *o, size_t n)
{
	size_t width = 0;

	for (size_t i = 0; i < n && o[i].flags; i++)
		width = MAX(width, strlen(o[i].flags));
	for (size_t i = 0; i < n && o[i].flags; i++)
		fprintf(out, "   %-*s  %s\n", (int)width, o[i].flags, o[i].text);
}

static const struct verb_help *find(const char *verb)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (strcmp(verbs[i].name, verb) == 0)
			return &verbs[i];
	return NULL;
}

void cli_version(FILE *out)
{
	fprintf(out, "casulo-runtime version %s\ncommit: %s\nspec: %s\n", CASULO_VERSION, CASULO_COMMIT, SPEC_VERSION);
}

int cli_help_verb(const char *verb, FILE *out)
{
	const struct verb_help *h = find(verb);

	if (h == NULL) {
		cli_usage(NULL, "No help topic for '%s'", verb);
		return 3;
	}
	fprintf(out, "NAME:\n   casulo-runtime %s - %s\n\nUSAGE:\n   casulo-runtime %s%s%s%s\n", h->name, h->summary,
		h->name, h->opts[0].flags ? " [command options]" : "", h->args[0] ? " " : "", h->args);
	if (h->description)
		fprintf(out, "\n%s\n", h->description);
	if (h->opts[0].flags) {
		fprintf(out, "\nOPTIONS:\n");
		print_opts(out, h->opts, ARRAY_SIZE(h->opts));
	}
	return 0;
}

void cli_help(FILE *out)
{
	fprintf(out,
		"NAME:\n   casulo-runtime - Open Container Initiative runtime\n\n"
		"casulo-runtime runs containers from OCI bundles (a config.json and a root\n"
		"filesystem) with runc's command line, so that tools written for runc can\n"
		"use it in its place.\n\n"
		"USAGE:\n   casulo-runtime [global options] command [command options] [arguments...]\n\n"
		"VERSION:\n   %s\ncommit: %s\nspec: %s\n\nCOMMANDS:\n",
		CASULO_VERSION, CASULO_COMMIT, SPEC_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		fprintf(out, "   %-10s  %s\n", verbs[i].name, verbs[i].summary);
	fprintf(out, "   %-10s  %s\n", "help, h", "show the commands, or one command's help");
	fprintf(out, "\nGLOBAL OPTIONS:\n");
	print_opts(out, global_opts, ARRAY_SIZE(global_opts));
}
