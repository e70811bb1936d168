/* The table of `ps`: the host's (or, in a VM, the guest's) ps, filtered to
 * a container's processes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"

static bool has_pid(const pid_t *pids, size_t n, long pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* The column of the "PID" header, or -1. */
static int pid_column(const char *header)
{
	char copy[8192], *save = NULL;
	int col = 0;

	snprintf(copy, sizeof(copy), "%s", header);
	for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save), col++)
		if (strcmp(t, "PID") == 0)
			return col;
	return -1;
}

int oci_ps_table(const pid_t *pids, size_t n, char *const *args, size_t n_args, FILE *out, struct err **e)
{
	char cmd[4096] = "ps", line[8192];
	int pid_col = -1;
	FILE *p;

	if (n_args == 0)
		strcat(cmd, " -ef");
	for (size_t i = 0; i < n_args; i++) {
		/* Options go through a shell: keep them to safe characters. */
		if (strspn(args[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-=,:_") !=
		    strlen(args[i]))
			return err_setx(e, EINVAL, "ps option '%s' has characters that are not allowed", args[i]);
		strncat(cmd, " ", sizeof(cmd) - strlen(cmd) - 1);
		strncat(cmd, args[i], sizeof(cmd) - strlen(cmd) - 1);
	}
	p = popen(cmd, "r");
	if (p == NULL)
		return err_set(e, errno, "run '%s'", cmd);
	for (int ln = 0; fgets(line, sizeof(line), p); ln++) {
		char copy[8192], *save = NULL, *t;
		int col = 0;

		if (ln == 0) {
			fputs(line, out);
			if ((pid_col = pid_column(line)) < 0) {
				pclose(p);
				return err_setx(e, EINVAL, "no PID column in the output of '%s'", cmd);
			}
			continue;
		}
		snprintf(copy, sizeof(copy), "%s", line);
		for (t = strtok_r(copy, " \t\n", &save); t && col < pid_col; t = strtok_r(NULL, " \t\n", &save))
			col++;
		if (t && has_pid(pids, n, strtol(t, NULL, 10)))
			fputs(line, out);
	}
	pclose(p);
	return 0;
}
