/*
 * Guest memory backends (--memory): the option, its JSON, the host checks
 * against a fake /sys, and the mappings themselves (memfd, file, hugetlb
 * when the host has a pool, NUMA policy on node 0, KSM's madvise).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "common/macro.h"
#include "test.h"
#include "vmm/config.h"
#include "vmm/memory.h"

static void set_memory(struct vm_config *cfg, const char *spec)
{
	struct err *e = NULL;

	vm_config_defaults(cfg);
	CHECK_INT(vm_config_set_memory(cfg, spec, &e), ==, 0);
	if (e)
		test_fail_at(__FILE__, __LINE__, "%s", e->msg);
	err_free(&e);
}

TEST(memory_option_parses_every_key)
{
	struct vm_config cfg;

	set_memory(&cfg, "512M");
	CHECK_INT(cfg.memory, ==, 512 * MiB);
	CHECK_INT(cfg.mem.backend, ==, MEMORY_BACKEND_ANON);
	vm_config_free(&cfg);
	set_memory(&cfg, "size=1G,backend=file:/tmp/x,shared=on,prefault=on,host-nodes=0:2-3,policy=interleave");
	CHECK_INT(cfg.memory, ==, GiB);
	CHECK_INT(cfg.mem.backend, ==, MEMORY_BACKEND_FILE);
	CHECK_STR(cfg.mem.path, "/tmp/x");
	CHECK(cfg.mem.shared && cfg.mem.prefault && !cfg.mem.mergeable);
	CHECK_INT(cfg.mem.host_nodes, ==, 0xdULL);
	CHECK_INT(cfg.mem.policy, ==, MEMORY_POLICY_INTERLEAVE);
	vm_config_free(&cfg);
	set_memory(&cfg, "size=256M,backend=memfd,hugepages=2M");
	CHECK(cfg.mem.shared); /* a memfd is mapped shared */
	CHECK_INT(cfg.mem.hugepage_size, ==, 2 * MiB);
	vm_config_free(&cfg);
	set_memory(&cfg, "size=256M,mergeable=on");
	CHECK(cfg.mem.mergeable);
	vm_config_free(&cfg);
}

TEST(memory_config_json_round_trip)
{
	struct vm_config cfg, back;
	struct err *e = NULL;
	json_object *o, *legacy;

	set_memory(&cfg, "size=256M,backend=file:/tmp/ram,shared=on,host-nodes=1,policy=bind");
	o = vm_config_to_json(&cfg);
	CHECK_INT(vm_config_from_json(&back, o, &e), ==, 0);
	CHECK_INT(back.mem.backend, ==, MEMORY_BACKEND_FILE);
	CHECK_STR(back.mem.path, "/tmp/ram");
	CHECK(back.mem.shared);
	CHECK_INT(back.mem.host_nodes, ==, 2);
	CHECK_INT(back.mem.policy, ==, MEMORY_POLICY_BIND);
	vm_config_free(&back);
	/* Without "memory" (older snapshots): anonymous memory. */
	legacy = json_object_get(o);
	json_object_object_del(legacy, "memory");
	CHECK_INT(vm_config_from_json(&back, legacy, &e), ==, 0);
	CHECK_INT(back.mem.backend, ==, MEMORY_BACKEND_ANON);
	vm_config_free(&back);
	/* A combination the option refuses is refused from JSON too. */
	json_object_object_add(o, "memory",
			       json_tokener_parse("{\"backend\":\"anon\",\"hugepages\":\"2M\","
						  "\"mergeable\":true}"));
	CHECK_INT(vm_config_from_json(&back, o, &e), <, 0);
	CHECK_CONTAINS(e->msg, "mergeable=on with hugepages");
	err_free(&e);
	vm_config_free(&back);
	/* Hostile values: wrong types are refused, never read as strings. */
	static const char *const bad[] = {
	    "{\"backend\":null}",
	    "{\"hugepages\":null}",
	    "{\"backend\":\"file\"}",
	    "{\"host_nodes\":[\"1\"],\"policy\":\"bind\"}",
	    "{\"host_nodes\":[1],\"policy\":null}",
	    "{\"host_nodes\":[64],\"policy\":\"bind\"}",
	    "{\"host_nodes\":[],\"policy\":\"bind\"}",
	    "[]",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_object_object_add(o, "memory", json_tokener_parse(bad[i]));
		CHECK_INT(vm_config_from_json(&back, o, &e), <, 0);
		CHECK(e != NULL);
		err_free(&e);
		vm_config_free(&back);
	}
	json_object_put(o);
	json_object_put(legacy);
	vm_config_free(&cfg);
}

static void write_file(const char *root, const char *rel, const char *text)
{
	char path[512], *slash;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* A host with two nodes, 100 free 2M pages (60 on node 0, 40 on node 1), no 1G pages, KSM. */
static char *fake_sysfs(void)
{
	char *root = strdup("/tmp/casulo-sysfs-XXXXXX");

	CHECK(mkdtemp(root) != NULL);
	write_file(root, "kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "100\n");
	write_file(root, "kernel/mm/hugepages/hugepages-2048kB/resv_hugepages", "0\n");
	write_file(root, "devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "60\n");
	write_file(root, "devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages", "40\n");
	write_file(root, "kernel/mm/ksm/run", "0\n");
	return root;
}

static void expect_host_error(const char *sysfs, const char *spec, const char *needle)
{
	struct vm_config cfg;
	struct err *e = NULL;

	set_memory(&cfg, spec);
	if (needle == NULL) {
		CHECK_INT(vm_config_check_memory_host(&cfg, sysfs, &e), ==, 0);
		if (e)
			test_fail_at(__FILE__, __LINE__, "%s: %s", spec, e->msg);
	} else {
		CHECK_INT(vm_config_check_memory_host(&cfg, sysfs, &e), <, 0);
		CHECK(e != NULL);
		if (e) {
			CHECK_CONTAINS(e->msg, needle);
			CHECK(strchr(e->msg, '\n') == NULL);
		}
	}
	err_free(&e);
	vm_config_free(&cfg);
}

TEST(memory_host_checks_on_a_fake_sysfs)
{
	char *root = fake_sysfs(), cmd[600];

	expect_host_error(root, "size=200M,hugepages=2M", NULL);
	expect_host_error(root, "size=202M,hugepages=2M", "needs 101 free 2M pages, the host's pool has 100");
	expect_host_error(root, "size=80M,hugepages=2M,host-nodes=1,policy=bind", NULL);
	expect_host_error(root, "size=100M,hugepages=2M,host-nodes=0:1,policy=bind", NULL);
	expect_host_error(root, "size=120M,hugepages=2M,host-nodes=1,policy=bind",
			  "needs 60 free 2M pages, the host's pool on the bound nodes has 40");
	expect_host_error(root, "size=1G,hugepages=1G", "this host has no 1G pages");
	expect_host_error(root, "size=256M,host-nodes=2,policy=bind", "node 2 does not exist on this host");
	expect_host_error(root, "size=256M,mergeable=on", NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/kernel/mm/ksm", root);
	CHECK_INT(system(cmd), ==, 0);
	expect_host_error(root, "size=256M,mergeable=on", "this host's kernel has no KSM");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK_INT(system(cmd), ==, 0);
	free(root);
}

static void create(struct guest_memory *mem, uint64_t size, const char *spec)
{
	struct vm_config cfg;
	struct err *e = NULL;

	set_memory(&cfg, spec);
	if (guest_memory_create_backed(mem, size, &cfg.mem, &e) < 0)
		test_fail_at(__FILE__, __LINE__, "%s: %s", spec, e ? e->msg : "?");
	err_free(&e);
	vm_config_free(&cfg);
}

TEST(memfd_and_shared_file_backends)
{
	struct guest_memory mem;
	char path[] = "/tmp/casulo-ram-XXXXXX", spec[128], buf[8];
	int fd = mkstemp(path);
	struct stat st;

	CHECK(fd >= 0);
	close(fd);
	unlink(path); /* a missing file is created at the guest's size */
	create(&mem, 64 * MiB, "size=64M,backend=memfd");
	CHECK(mem.has_fd && mem.shared && mem.backend == MEMORY_BACKEND_MEMFD);
	CHECK_INT(guest_memory_write(&mem, 0x1000, "memfd", 5), ==, 0);
	CHECK_INT(pread(mem.fd, buf, 5, 0x1000), ==, 5);
	CHECK(memcmp(buf, "memfd", 5) == 0);
	guest_memory_destroy(&mem);

	snprintf(spec, sizeof(spec), "size=64M,backend=file:%s,shared=on", path);
	create(&mem, 64 * MiB, spec);
	CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == 64 * MiB);
	CHECK_INT(guest_memory_write(&mem, 0x2000, "in the file", 11), ==, 0);
	guest_memory_destroy(&mem);
	fd = open(path, O_RDONLY);
	CHECK_INT(pread(fd, buf, 8, 0x2000), ==, 8);
	CHECK(memcmp(buf, "in the f", 8) == 0);
	close(fd);

	/* Private: the guest's writes stay out of the file. */
	snprintf(spec, sizeof(spec), "size=64M,backend=file:%s", path);
	create(&mem, 64 * MiB, spec);
	CHECK(!mem.shared);
	CHECK(memcmp(guest_memory_ptr(&mem, 0x2000, 8), "in the f", 8) == 0);
	CHECK_INT(guest_memory_write(&mem, 0x2000, "XXXXXXXX", 8), ==, 0);
	guest_memory_destroy(&mem);
	fd = open(path, O_RDONLY);
	CHECK_INT(pread(fd, buf, 8, 0x2000), ==, 8);
	CHECK(memcmp(buf, "in the f", 8) == 0);
	close(fd);
	unlink(path);
}

TEST(fill_from_a_sparse_snapshot_file)
{
	struct guest_memory mem;
	char path[] = "/tmp/casulo-snapmem-XXXXXX";
	int fd = mkstemp(path);
	struct err *e = NULL;

	CHECK(fd >= 0 && ftruncate(fd, 64 * MiB) == 0);
	CHECK_INT(pwrite(fd, "low", 3, 4096), ==, 3);
	CHECK_INT(pwrite(fd, "high", 4, 63 * MiB), ==, 4);
	create(&mem, 64 * MiB, "size=64M,backend=memfd");
	CHECK_INT(guest_memory_fill_from_file(&mem, fd, &e), ==, 0);
	CHECK(memcmp(guest_memory_ptr(&mem, 4096, 3), "low", 3) == 0);
	CHECK(memcmp(guest_memory_ptr(&mem, 63 * MiB, 4), "high", 4) == 0);
	CHECK(guest_page_is_zero(guest_memory_ptr(&mem, 32 * MiB, 4096)));
	guest_memory_destroy(&mem);
	close(fd);
	unlink(path);
}

TEST(mergeable_and_numa_policy)
{
	struct guest_memory mem;

	if (access("/sys/kernel/mm/ksm/run", F_OK) != 0)
		test_skip("this kernel has no KSM");
	create(&mem, 64 * MiB, "size=64M,mergeable=on,prefault=on");
	CHECK(!mem.shared && mem.page_size == 4096);
	guest_memory_destroy(&mem);
	if (access("/sys/devices/system/node/node0", F_OK) != 0)
		test_skip("no NUMA node 0 in /sys");
	create(&mem, 64 * MiB, "size=64M,host-nodes=0,policy=bind,prefault=on");
	guest_memory_destroy(&mem);
}

/* With a pool (the lab reserves one; CI hosts rarely): hugetlb memory, and
 * a request larger than the pool fails at the mapping, not in the guest. */
TEST(hugetlb_reserves_at_the_mapping)
{
	struct vm_config cfg;
	struct guest_memory mem;
	struct err *e = NULL;
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
	long free_pages = 0;

	if (f == NULL || fscanf(f, "%ld", &free_pages) != 1 || free_pages < 32) {
		if (f)
			fclose(f);
		test_skip("fewer than 32 free 2M hugepages (vm.nr_hugepages)");
	}
	fclose(f);
	create(&mem, 64 * MiB, "size=64M,hugepages=2M");
	CHECK_INT(mem.page_size, ==, 2 * MiB);
	CHECK_INT(guest_memory_write(&mem, 0x200000, "huge", 4), ==, 0);
	guest_memory_destroy(&mem);
	set_memory(&cfg, "size=64M,hugepages=2M");
	CHECK_INT(guest_memory_create_backed(&mem, (uint64_t)(free_pages + 16) * 2 * MiB, &cfg.mem, &e), <, 0);
	CHECK_CONTAINS(e->msg, "hugepage pool cannot reserve");
	err_free(&e);
	vm_config_free(&cfg);
}
