/* The pod sandbox's process for the `cri` suite and bench/pod.sh: it holds
 * the pod's namespaces open and does nothing else.  Built static, it is the
 * only file of the pause image the tests import into containerd (no registry
 * is reachable here).  As PID 1 of a pod that shares its PID namespace it
 * reaps orphans; SIGTERM and SIGINT end it with status 0, as StopPodSandbox
 * expects. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction term = {.sa_handler = stop};
	struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};

	if (sigaction(SIGTERM, &term, NULL) < 0 || sigaction(SIGINT, &term, NULL) < 0 ||
	    sigaction(SIGCHLD, &child, NULL) < 0)
		return 1;
	for (;;)
		pause();
}
