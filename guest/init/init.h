/*
 * What casulo-init's two modes share: the command mode (casulo-init.c,
 * run the command after "--") and the agent mode (agent.c, serve
 * casulo-runtime's containers over vsock; docs/vm-containers.md).
 */
#ifndef CASULO_GUEST_INIT_H
#define CASULO_GUEST_INIT_H

/* "casulo-init: MESSAGE" on stderr (the console). */
void init_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* sync, report status on the exit-status port, power off. */
__attribute__((noreturn)) void init_poweroff(unsigned status);

/* Agent mode, with casulo.agent on the kernel command line: never returns. */
__attribute__((noreturn)) void agent_run(const char *cmdline);

#endif
