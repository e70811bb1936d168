/*
 * The shared libraries a jailed program needs.  casulo-vmm is a dynamic
 * executable (Debian's libraries), so its jail must hold its loader and
 * libraries at the paths the loader looks for them.  We ask the loader
 * itself (`ld.so --list`, what ldd runs), with an empty environment: it
 * maps the libraries and prints where it found them, running none of
 * their code.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdutil.h"
#include "jailer/jailer.h"

/* Where a soname given to --lib is looked for (Debian's multiarch first). */
static const char *const lib_dirs[] = {
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"};

/* PT_INTERP of an ELF64 executable into interp ("" for a static one). */
static int read_interp(const char *path, char *interp, size_t size, struct err **e)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	interp[0] = '\0';
	if (fd < 0)
		return err_set(e, errno, "exec file '%s': open", path);
	if (pread_full(fd, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256) {
		close(fd);
		return err_set(e, 0, "exec file '%s': not a 64-bit ELF executable", path);
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread_full(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) < 0)
			break;
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz == 0 || ph.p_filesz >= size ||
		    pread_full(fd, interp, ph.p_filesz, (off_t)ph.p_offset) < 0 || interp[0] != '/') {
			close(fd);
			return err_set(e, 0, "exec file '%s': bad PT_INTERP", path);
		}
		interp[ph.p_filesz] = '\0';
		break;
	}
	close(fd);
	return 0;
}

static int add_path(char ***list, size_t *n, const char *path)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], path) == 0)
			return 0;
	char **l = realloc(*list, (*n + 1) * sizeof(**list));
	if (l == NULL)
		return -ENOMEM;
	*list = l;
	if ((l[*n] = strdup(path)) == NULL)
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* Run `interp --list obj` and add every library it names. */
static int list_with_loader(const char *interp, const char *obj, char ***list, size_t *n, struct err **e)
{
	char *const argv[] = {(char *)interp, "--list", (char *)obj, NULL};
	char *const envp[] = {NULL};
	char out[16384];
	size_t len = 0;
	int pipefd[2], status;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return err_set(e, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return err_set(e, errno, "fork");
	}
	if (pid == 0) {
		dup2(pipefd[1], 1);
		execve(interp, argv, envp);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t r = read(pipefd[0], out + len, sizeof(out) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == sizeof(out) - 1)
			break;
	}
	close(pipefd[0]);
	out[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(e, 0, "'%s': its dynamic loader %s could not list its libraries (status %d)", obj,
			       interp, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char *arrow = strstr(line, "=> "), *path, *end;
		while (*line == '\t' || *line == ' ')
			line++;
		if (arrow && strncmp(arrow + 3, "not found", 9) == 0)
			return err_set(e, ENOENT, "'%s': library '%.*s'", obj, (int)(arrow - line - 1), line);
		path = arrow ? arrow + 3 : line;
		if (path[0] != '/')
			continue; /* linux-vdso.so.1: in no file */
		if ((end = strstr(path, " (")) != NULL)
			*end = '\0';
		if (add_path(list, n, path) < 0)
			return err_set(e, ENOMEM, "library list");
	}
	return 0;
}

static int find_soname(const char *name, char *path, size_t size)
{
	if (strchr(name, '/'))
		return snprintf(path, size, "%s", name) < (int)size && access(path, R_OK) == 0 ? 0 : -ENOENT;
	for (size_t i = 0; i < sizeof(lib_dirs) / sizeof(lib_dirs[0]); i++)
		if (snprintf(path, size, "%s/%s", lib_dirs[i], name) < (int)size && access(path, R_OK) == 0)
			return 0;
	return -ENOENT;
}

int jail_find_libs(const char *exec_file, char *const *extra, size_t n_extra, char ***ret, size_t *n, struct err **e)
{
	char interp[256], path[4096];
	char **list = NULL;
	size_t count = 0;
	int r;

	*ret = NULL;
	*n = 0;
	if ((r = read_interp(exec_file, interp, sizeof(interp), e)) < 0)
		return r;
	if (interp[0] == '\0') {
		if (n_extra)
			return err_set(e, 0, "exec file '%s': a static program cannot load --lib %s", exec_file,
				       extra[0]);
		return 0;
	}
	r = list_with_loader(interp, exec_file, &list, &count, e);
	for (size_t i = 0; r == 0 && i < n_extra; i++) {
		if (find_soname(extra[i], path, sizeof(path)) < 0)
			r = err_set(e, ENOENT, "library '%s'", extra[i]);
		else if (add_path(&list, &count, path) < 0)
			r = err_set(e, ENOMEM, "library list");
		else
			r = list_with_loader(interp, path, &list, &count, e);
	}
	/* The loader finds what is not in its cache by its default paths
	 * only: its cache comes too, when there is one. */
	if (r == 0 && access("/etc/ld.so.cache", R_OK) == 0 && add_path(&list, &count, "/etc/ld.so.cache") < 0)
		r = err_set(e, ENOMEM, "library list");
	if (r == 0 && add_path(&list, &count, interp) < 0)
		r = err_set(e, ENOMEM, "library list");
	if (r < 0) {
		for (size_t i = 0; i < count; i++)
			free(list[i]);
		free(list);
		return r;
	}
	*ret = list;
	*n = count;
	return 0;
}
