#include "modules.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int modules_find_modinfo(const void *elf, size_t elf_len, const char **info, size_t *len)
{
	const unsigned char *b = elf;
	Elf64_Ehdr eh;
	Elf64_Shdr strtab;

	if (elf_len < sizeof(eh) || memcmp(b, ELFMAG, SELFMAG) != 0 || b[EI_CLASS] != ELFCLASS64 ||
	    b[EI_DATA] != ELFDATA2LSB)
		return -EINVAL;
	memcpy(&eh, b, sizeof(eh));
	if (eh.e_shentsize < sizeof(Elf64_Shdr) || eh.e_shstrndx >= eh.e_shnum || eh.e_shoff > elf_len ||
	    (uint64_t)eh.e_shnum * eh.e_shentsize > elf_len - eh.e_shoff)
		return -EINVAL;
	memcpy(&strtab, b + eh.e_shoff + (size_t)eh.e_shstrndx * eh.e_shentsize, sizeof(strtab));
	if (strtab.sh_offset > elf_len || strtab.sh_size > elf_len - strtab.sh_offset)
		return -EINVAL;
	for (size_t i = 0; i < eh.e_shnum; i++) {
		static const char want[] = ".modinfo";
		Elf64_Shdr sh;

		memcpy(&sh, b + eh.e_shoff + i * eh.e_shentsize, sizeof(sh));
		if (sh.sh_name >= strtab.sh_size || strtab.sh_size - sh.sh_name < sizeof(want) ||
		    memcmp(b + strtab.sh_offset + sh.sh_name, want, sizeof(want)) != 0)
			continue;
		if (sh.sh_offset > elf_len || sh.sh_size > elf_len - sh.sh_offset)
			return -EINVAL;
		*info = (const char *)b + sh.sh_offset;
		*len = sh.sh_size;
		return 0;
	}
	return -ENOENT;
}

int modules_modinfo_get(const char *info, size_t len, const char *key, char *val, size_t size)
{
	size_t klen = strlen(key);
	const char *p = info, *end = info + len;

	while (p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t slen = nul ? (size_t)(nul - p) : (size_t)(end - p);

		if (slen > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t vlen = slen - klen - 1;

			if (vlen >= size)
				return -ENAMETOOLONG;
			memcpy(val, p + klen + 1, vlen);
			val[vlen] = '\0';
			return 1;
		}
		p += slen + 1;
	}
	return 0;
}

void modules_canonical_name(char *name)
{
	for (; *name != '\0'; name++)
		if (*name == '-')
			*name = '_';
}

static ssize_t modules_find(const struct module *mods, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(mods[i].name) == len && memcmp(mods[i].name, name, len) == 0)
			return (ssize_t)i;
	return -1;
}

enum { MOD_NEW, MOD_VISITING, MOD_DONE };

struct modules_sort {
	const struct module *mods;
	size_t n, count;
	size_t *order;
	unsigned char *state;
	FILE *report;
	int problems;
};

static void modules_visit(struct modules_sort *s, size_t i)
{
	const char *p = s->mods[i].depends;

	if (s->state[i] == MOD_DONE)
		return;
	s->state[i] = MOD_VISITING;
	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		ssize_t dep = modules_find(s->mods, s->n, p, len);

		if (len == 0) {
			/* an empty item: nothing to do */
		} else if (dep < 0) {
			s->problems++;
			if (s->report)
				fprintf(s->report, "casulo-init: module '%s' needs '%.*s', which is missing\n",
					s->mods[i].name, (int)len, p);
		} else if (s->state[dep] == MOD_VISITING) {
			s->problems++;
			if (s->report)
				fprintf(s->report, "casulo-init: modules '%s' and '%s' depend on each other\n",
					s->mods[i].name, s->mods[dep].name);
		} else {
			modules_visit(s, (size_t)dep);
		}
		p += len;
		if (*p == ',')
			p++;
	}
	s->state[i] = MOD_DONE;
	s->order[s->count++] = i;
}

int modules_order(const struct module *mods, size_t n, size_t *order, FILE *report)
{
	struct modules_sort s = {.mods = mods, .n = n, .order = order, .report = report};

	s.state = calloc(n ? n : 1, 1);
	if (s.state == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		modules_visit(&s, i);
	free(s.state);
	return s.problems;
}

/* Fill m from the module file at path: its name and dependencies. */
static int modules_read(const char *path, struct module *m)
{
	const char *info;
	size_t len;
	struct stat st;
	void *map;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		r = st.st_size == 0 ? -EINVAL : -errno;
		close(fd);
		return r;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -errno;
	r = modules_find_modinfo(map, (size_t)st.st_size, &info, &len);
	if (r == 0) {
		if (modules_modinfo_get(info, len, "name", m->name, sizeof(m->name)) != 1)
			r = -EINVAL;
		else if (modules_modinfo_get(info, len, "depends", m->depends, sizeof(m->depends)) < 0)
			r = -ENAMETOOLONG;
	}
	munmap(map, (size_t)st.st_size);
	modules_canonical_name(m->name);
	modules_canonical_name(m->depends);
	return r;
}

int modules_load_dir(const char *dir, FILE *report, int *failed)
{
	struct module *mods = NULL;
	size_t n = 0, cap = 0, *order = NULL;
	struct dirent *de;
	int loaded = 0;
	DIR *d;

	*failed = 0;
	d = opendir(dir);
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 4 || strcmp(de->d_name + len - 3, ".ko") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			struct module *grown = realloc(mods, cap * sizeof(*mods));
			if (grown == NULL) {
				closedir(d);
				free(mods);
				return -ENOMEM;
			}
			mods = grown;
		}
		memset(&mods[n], 0, sizeof(mods[n]));
		int r = snprintf(mods[n].path, sizeof(mods[n].path), "%s/%s", dir, de->d_name);
		r = (size_t)r >= sizeof(mods[n].path) ? -ENAMETOOLONG : modules_read(mods[n].path, &mods[n]);
		if (r < 0) {
			fprintf(report, "casulo-init: module '%s': read: %s\n", de->d_name, strerror(-r));
			(*failed)++;
			continue;
		}
		n++;
	}
	closedir(d);
	order = calloc(n ? n : 1, sizeof(*order));
	if (order == NULL) {
		free(mods);
		return -ENOMEM;
	}
	modules_order(mods, n, order, report);
	for (size_t k = 0; k < n; k++) {
		const struct module *m = &mods[order[k]];
		int fd = open(m->path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0) {
			if (errno != EEXIST) {
				fprintf(report, "casulo-init: module '%s': load: %s\n", m->name, strerror(errno));
				(*failed)++;
			}
		} else {
			loaded++;
		}
		if (fd >= 0)
			close(fd);
	}
	free(order);
	free(mods);
	return loaded;
}
