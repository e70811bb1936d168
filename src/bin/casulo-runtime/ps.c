/* ps [--format table|json] ID [ps options]: the container's processes;
 * the table is `ps -ef` (or the given options) filtered to them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int handle(int c, const char *arg, void *data)
{
	if (c != 'f')
		return -1;
	if (strcmp(arg, "json") != 0 && strcmp(arg, "table") != 0)
		return -cli_usage("ps", "--format '%s': table or json", arg);
	*(bool *)data = strcmp(arg, "json") == 0;
	return 0;
}

static bool has_pid(const pid_t *pids, size_t n, long pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

VERB(ps)
{
	static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0}};
	struct err *e = NULL;
	bool json = false;
	pid_t *pids = NULL;
	size_t n = 0;
	int first = cli_getopt("ps", argc, argv, opts, handle, &json);
	char cmd[4096] = "ps", line[8192];
	int pid_col = -1;
	FILE *p;

	if (first < 0)
		return 1;
	if (first >= argc)
		return cli_usage("ps", "requires the container id");
	if (oci_pids(g, argv[first], &pids, &n, &e) < 0)
		return cli_fail(e);
	if (json) {
		if (n == 0)
			printf("null\n");
		else {
			printf("[");
			for (size_t i = 0; i < n; i++)
				printf("%s%d", i ? "," : "", (int)pids[i]);
			printf("]\n");
		}
		free(pids);
		return 0;
	}
	if (first + 1 >= argc)
		strcat(cmd, " -ef");
	for (int i = first + 1; i < argc; i++) {
		/* Options go through a shell: keep them to safe characters. */
		if (strspn(argv[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-=,:_") !=
		    strlen(argv[i])) {
			free(pids);
			return cli_usage("ps", "ps option '%s' has characters that are not allowed", argv[i]);
		}
		strncat(cmd, " ", sizeof(cmd) - strlen(cmd) - 1);
		strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 1);
	}
	p = popen(cmd, "r");
	if (p == NULL) {
		free(pids);
		return cli_usage("ps", "run '%s' failed", cmd);
	}
	for (int ln = 0; fgets(line, sizeof(line), p); ln++) {
		if (ln == 0) {
			/* Find the PID column in the header. */
			char copy[8192], *save = NULL;
			int col = 0;
			snprintf(copy, sizeof(copy), "%s", line);
			for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save), col++)
				if (strcmp(t, "PID") == 0)
					pid_col = col;
			fputs(line, stdout);
			if (pid_col < 0) {
				pclose(p);
				free(pids);
				return cli_usage("ps", "no PID column in the output of '%s'", cmd);
			}
			continue;
		}
		char copy[8192], *save = NULL, *t;
		int col = 0;
		snprintf(copy, sizeof(copy), "%s", line);
		for (t = strtok_r(copy, " \t\n", &save); t && col < pid_col; t = strtok_r(NULL, " \t\n", &save))
			col++;
		if (t && has_pid(pids, n, strtol(t, NULL, 10)))
			fputs(line, stdout);
	}
	pclose(p);
	free(pids);
	return 0;
}
