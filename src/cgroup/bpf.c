/*
 * The cgroup v2 device controller: an eBPF program of type
 * BPF_PROG_TYPE_CGROUP_DEVICE made from the device rules.  The rules are
 * tested last to first, so the last matching rule decides (the v1
 * semantics); no match denies.  A new program is attached before the ones
 * it replaces are detached: meanwhile both apply, and a device either
 * denies stays denied.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup/cgroup-internal.h"
#include "common/macro.h"

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

static int bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static unsigned access_bits(const char *a)
{
	unsigned bits = 0;

	for (; *a; a++)
		bits |= *a == 'm' ? BPF_DEVCG_ACC_MKNOD : *a == 'r' ? BPF_DEVCG_ACC_READ : BPF_DEVCG_ACC_WRITE;
	return bits;
}

/* Emit one rule's test: jumps past its own end when it does not match.
 * Type 'a' means every device and every access whatever the other fields
 * say, as writing "a" to devices.allow or devices.deny does on v1 (and as
 * runc's emulator treats it). */
static size_t emit_rule(struct bpf_insn *p, const struct cgroup_device_rule *rule)
{
	static const struct cgroup_device_rule any_rule = {.type = 'a', .major = -1, .minor = -1, .access = "rwm"};
	struct cgroup_device_rule any = any_rule;
	const struct cgroup_device_rule *r = rule;
	unsigned acc;
	size_t n = 0, len = 0;

	if (rule->type == 'a') {
		any.allow = rule->allow;
		r = &any;
	}
	acc = access_bits(r->access[0] ? r->access : "rwm");

	/* Count first: each test is 1 insn (access test 3), the verdict 2. */
	if (r->type != 'a')
		len += 1;
	if (acc != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE))
		len += 3;
	if (r->major >= 0)
		len += 1;
	if (r->minor >= 0)
		len += 1;
	len += 2;
	if (p == NULL)
		return len;
	/* R2 type, R3 access, R4 major, R5 minor. */
	if (r->type != 'a')
		p[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, (short)(len - n - 1),
			    r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR),
		n++;
	if (acc != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
		/* Requested bits outside the rule's: no match. */
		p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
		p[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (int)~acc);
		p[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, (short)(len - n - 1), 0), n++;
	}
	if (r->major >= 0)
		p[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, (short)(len - n - 1), (int)r->major), n++;
	if (r->minor >= 0)
		p[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, (short)(len - n - 1), (int)r->minor), n++;
	p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
	p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return n;
}

int cgroup_bpf_build(const struct cgroup_device_rule *rules, size_t nrules, struct bpf_insn **ret, size_t *len)
{
	size_t total = 6 + 2, n = 0;
	struct bpf_insn *p;

	for (size_t i = 0; i < nrules; i++)
		total += emit_rule(NULL, &rules[i]);
	p = calloc(total, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	/* R2 = ctx->access_type & 0xffff; R3 = ctx->access_type >> 16;
	 * R4 = ctx->major; R5 = ctx->minor. */
	p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0);
	p[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
	p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 0, 0);
	p[n++] = INSN(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
	p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0);
	p[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0);
	for (size_t i = nrules; i-- > 0;) {
		n += emit_rule(p + n, &rules[i]);
		/* A rule matching everything decides alone: what follows would be
		 * unreachable, which the verifier refuses. */
		if (emit_rule(NULL, &rules[i]) == 2) {
			*ret = p;
			*len = n;
			return 0;
		}
	}
	p[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	p[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	*ret = p;
	*len = n;
	return 0;
}

int cgroup_bpf_devices_attach(const char *dir, const struct cgroup_device_rule *rules, size_t n, struct err **e)
{
	_cleanup_free_ struct bpf_insn *prog = NULL;
	_cleanup_close_ int cgfd = -1, progfd = -1;
	char log[4096] = "";
	uint32_t old_ids[64];
	union bpf_attr attr;
	size_t len;
	uint32_t n_old = 0;

	if (cgroup_bpf_build(rules, n, &prog, &len) < 0)
		return err_set(e, ENOMEM, "cgroup '%s': device program", dir);
	cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0)
		return err_set(e, errno, "cgroup '%s': open", dir);

	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)cgfd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)old_ids;
	attr.query.prog_cnt = ARRAY_SIZE(old_ids);
	if (bpf(BPF_PROG_QUERY, &attr) == 0)
		n_old = attr.query.prog_cnt;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)prog;
	attr.insn_cnt = (uint32_t)len;
	attr.license = (uint64_t)(uintptr_t) "Apache";
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	progfd = bpf(BPF_PROG_LOAD, &attr);
	if (progfd < 0 && errno == ENOSPC) {
		attr.log_level = 0;
		attr.log_buf = 0;
		attr.log_size = 0;
		progfd = bpf(BPF_PROG_LOAD, &attr);
	}
	if (progfd < 0)
		return err_set(e, errno, "cgroup '%s': load device eBPF program (%zu rules)%s%s", dir, n,
			       log[0] ? ": verifier: " : "", log);

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cgfd;
	attr.attach_bpf_fd = (uint32_t)progfd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (bpf(BPF_PROG_ATTACH, &attr) < 0)
		return err_set(e, errno, "cgroup '%s': attach device eBPF program", dir);

	/* Detach the programs the new one replaces. */
	for (uint32_t i = 0; i < n_old; i++) {
		int oldfd;
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = old_ids[i];
		oldfd = bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (oldfd < 0)
			continue;
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)cgfd;
		attr.attach_bpf_fd = (uint32_t)oldfd;
		attr.attach_type = BPF_CGROUP_DEVICE;
		(void)bpf(BPF_PROG_DETACH, &attr);
		close(oldfd);
	}
	return 0;
}
