/*
 * Device rules.  Both versions go through one model of the v1 devices
 * controller (the kernel's semantics, as runc 1.1 emulates them): a
 * default (allow or deny everything) and exceptions, each a device pattern
 * with access bits.  A rule of type 'a' resets the default; any other rule
 * adds to the exceptions when its verdict differs from the default, and
 * takes access away from the exception of the same pattern otherwise (a
 * rule that would punch a hole in a wildcard exception is refused: the
 * kernel would silently ignore it).
 *
 * v1 is written as the fewest rules that take devices.list from what it
 * holds to the target, the access a rule drops before the access it adds,
 * so that no device is reachable in between that the old or the new rules
 * deny (only a change of default needs the disruptive "a" rule).  cgroup2
 * gets an eBPF program made from the same model.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup/cgroup-internal.h"
#include "common/macro.h"

enum { ACC_R = 1, ACC_W = 2, ACC_M = 4, ACC_ALL = 7 };

static unsigned access_bits(const char *a)
{
	unsigned bits = 0;

	for (; *a; a++)
		bits |= *a == 'r' ? ACC_R : *a == 'w' ? ACC_W : *a == 'm' ? ACC_M : 0;
	return bits;
}

static void access_string(unsigned bits, char out[4])
{
	size_t n = 0;

	if (bits & ACC_R)
		out[n++] = 'r';
	if (bits & ACC_W)
		out[n++] = 'w';
	if (bits & ACC_M)
		out[n++] = 'm';
	out[n] = '\0';
}

static bool same_pattern(const struct cgroup_device_rule *a, char type, int64_t major, int64_t minor)
{
	return a->type == type && a->major == major && a->minor == minor;
}

static struct cgroup_device_rule *find(const struct cgroup_devices_state *st, char type, int64_t major, int64_t minor)
{
	for (size_t i = 0; i < st->n; i++)
		if (same_pattern(&st->rules[i], type, major, minor))
			return &st->rules[i];
	return NULL;
}

static void reset(struct cgroup_devices_state *st, bool default_allow)
{
	free(st->rules);
	st->rules = NULL;
	st->n = 0;
	st->default_allow = default_allow;
}

static int add_exception(struct cgroup_devices_state *st, const struct cgroup_device_rule *r)
{
	struct cgroup_device_rule *x = find(st, r->type, r->major, r->minor), *v;

	if (x == NULL) {
		v = realloc(st->rules, (st->n + 1) * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		st->rules = v;
		x = &v[st->n++];
		*x = *r;
		x->access[0] = '\0';
	}
	x->allow = !st->default_allow;
	access_string(access_bits(x->access) | access_bits(r->access), x->access);
	return 0;
}

static int remove_exception(struct cgroup_devices_state *st, const struct cgroup_device_rule *r, char *why,
			    size_t why_size)
{
	const int64_t any = -1;
	const int64_t partial[3][2] = {{any, r->minor}, {r->major, any}, {any, any}};
	unsigned drop = access_bits(r->access);
	struct cgroup_device_rule *x;

	/* The kernel only takes access from the exception of exactly this
	 * pattern: one from a wildcard exception would be ignored, and the
	 * device still reachable. */
	for (size_t i = 0; i < 3; i++) {
		if (partial[i][0] == r->major && partial[i][1] == r->minor)
			continue;
		x = find(st, r->type, partial[i][0], partial[i][1]);
		if (x && (access_bits(x->access) & drop)) {
			char a[32], b[32];
			cgroup_device_rule_format(r, a, sizeof(a));
			cgroup_device_rule_format(x, b, sizeof(b));
			if (why)
				snprintf(why, why_size,
					 "rule '%s' is not supported by the v1 devices controller "
					 "(it cannot punch a hole in the wildcard rule '%s')",
					 a, b);
			return -EINVAL;
		}
	}
	x = find(st, r->type, r->major, r->minor);
	if (x == NULL)
		return 0;
	access_string(access_bits(x->access) & ~drop, x->access);
	if (x->access[0] == '\0') {
		*x = st->rules[st->n - 1];
		st->n--;
	}
	return 0;
}

int cgroup_devices_apply(struct cgroup_devices_state *st, const struct cgroup_device_rule *rules, size_t n, char *why,
			 size_t why_size)
{
	for (size_t i = 0; i < n; i++) {
		const struct cgroup_device_rule *r = &rules[i];
		int rc;

		if (r->type == 'a') {
			reset(st, r->allow);
			continue;
		}
		/* A rule whose verdict is the default's takes an exception away. */
		if (r->allow == st->default_allow)
			rc = remove_exception(st, r, why, why_size);
		else
			rc = add_exception(st, r);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_number(const char **p, int64_t *v)
{
	char *end;

	if (**p == '*') {
		(*p)++;
		*v = -1;
		return 0;
	}
	*v = strtoll(*p, &end, 10);
	if (end == *p || *v < 0)
		return -EINVAL;
	*p = end;
	return 0;
}

int cgroup_devices_parse_list(const char *text, struct cgroup_devices_state *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		struct cgroup_device_rule r = {.allow = true};
		const char *p = line;
		size_t alen;

		if (*p == '\n')
			continue;
		r.type = *p++;
		if (strchr("abc", r.type) == NULL || *p++ != ' ' || parse_number(&p, &r.major) < 0 || *p++ != ':' ||
		    parse_number(&p, &r.minor) < 0 || *p++ != ' ')
			goto bad;
		alen = strcspn(p, "\n");
		if (alen == 0 || alen > 3)
			goto bad;
		memcpy(r.access, p, alen);
		r.access[alen] = '\0';
		/* "a *:* rwm" is how the kernel shows a cgroup that allows
		 * everything (it lists no exceptions then). */
		if (r.type == 'a') {
			reset(ret, true);
			return 0;
		}
		if (add_exception(ret, &r) < 0) {
			cgroup_devices_state_clear(ret);
			return -ENOMEM;
		}
	}
	return 0;
bad:
	cgroup_devices_state_clear(ret);
	return -EINVAL;
}

void cgroup_devices_state_clear(struct cgroup_devices_state *st)
{
	free(st->rules);
	memset(st, 0, sizeof(*st));
}

/* Exceptions in a fixed order (type, major, minor), so that the same
 * change always writes the same rules. */
static int cmp_rule(const void *a, const void *b)
{
	const struct cgroup_device_rule *x = a, *y = b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->major != y->major)
		return x->major < y->major ? -1 : 1;
	return x->minor < y->minor ? -1 : x->minor > y->minor;
}

static struct cgroup_device_rule *sorted(const struct cgroup_devices_state *st)
{
	struct cgroup_device_rule *v = malloc((st->n ? st->n : 1) * sizeof(*v));

	if (v == NULL)
		return NULL;
	if (st->n)
		memcpy(v, st->rules, st->n * sizeof(*v));
	qsort(v, st->n, sizeof(*v), cmp_rule);
	return v;
}

int cgroup_devices_transition(const struct cgroup_devices_state *from, const struct cgroup_devices_state *to,
			      struct cgroup_device_rule **ret, size_t *n)
{
	static const struct cgroup_devices_state none;
	/* A blacklist's exceptions cannot be known from devices.list (it
	 * shows "a *:* rwm" only), and a change of default resets them: both
	 * start over with the "a" rule. */
	bool disruptive = from->default_allow || from->default_allow != to->default_allow;
	const struct cgroup_devices_state *old = disruptive ? &none : from;
	_cleanup_free_ struct cgroup_device_rule *olds = sorted(old), *news = sorted(to);
	struct cgroup_device_rule *v = calloc(old->n + to->n + 1, sizeof(*v));
	size_t k = 0;

	if (v == NULL || olds == NULL || news == NULL) {
		free(v);
		return -ENOMEM;
	}
	if (disruptive)
		v[k++] = (struct cgroup_device_rule){to->default_allow, 'a', -1, -1, "rwm"};
	/* What an old exception loses goes first ... */
	for (size_t i = 0; i < old->n; i++) {
		const struct cgroup_device_rule *o = &olds[i], *t = find(to, o->type, o->major, o->minor);
		unsigned lost = access_bits(o->access) & ~(t ? access_bits(t->access) : 0);
		if (lost) {
			v[k] = *o;
			v[k].allow = to->default_allow;
			access_string(lost, v[k++].access);
		}
	}
	/* ... then what the new ones gain. */
	for (size_t i = 0; i < to->n; i++) {
		const struct cgroup_device_rule *t = &news[i], *o = find(old, t->type, t->major, t->minor);
		unsigned gained = access_bits(t->access) & ~(o ? access_bits(o->access) : 0);
		if (gained) {
			v[k] = *t;
			v[k].allow = !to->default_allow;
			access_string(gained, v[k++].access);
		}
	}
	*ret = v;
	*n = k;
	return 0;
}

void cgroup_device_rule_format(const struct cgroup_device_rule *r, char *buf, size_t size)
{
	char maj[24] = "*", min[24] = "*";

	if (r->type == 'a') {
		snprintf(buf, size, "a");
		return;
	}
	if (r->major >= 0)
		snprintf(maj, sizeof(maj), "%lld", (long long)r->major);
	if (r->minor >= 0)
		snprintf(min, sizeof(min), "%lld", (long long)r->minor);
	snprintf(buf, size, "%c %s:%s %s", r->type, maj, min, r->access[0] ? r->access : "rwm");
}

static bool states_equal(const struct cgroup_devices_state *a, const struct cgroup_devices_state *b)
{
	if (a->default_allow != b->default_allow || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct cgroup_device_rule *x = find(b, a->rules[i].type, a->rules[i].major, a->rules[i].minor);
		if (x == NULL || access_bits(x->access) != access_bits(a->rules[i].access))
			return false;
	}
	return true;
}

/* Each rule one write, in order, to devices.allow or devices.deny, each
 * file opened once (the kernel takes one rule per write). */
static int v1_write_rules(const char *dir, const struct cgroup_device_rule *writes, size_t n, struct err **e)
{
	int fds[2] = {-1, -1}, r = 0; /* devices.deny, devices.allow */

	for (size_t i = 0; i < n && r == 0; i++) {
		const char *file = writes[i].allow ? "devices.allow" : "devices.deny";
		int *fd = &fds[writes[i].allow ? 1 : 0];
		char v[64], path[4200];
		ssize_t w = -1;
		size_t len;

		cgroup_device_rule_format(&writes[i], v, sizeof(v));
		len = strlen(v);
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		if (*fd < 0)
			*fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (*fd >= 0)
			do
				w = write(*fd, v, len);
			while (w < 0 && errno == EINTR);
		if (w < 0 || (size_t)w != len)
			r = err_set(e, w < 0 ? errno : EIO, "cgroup '%s': write '%s' to %s", dir, v, file);
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

static int v1_set_devices(const char *dir, const struct cgroup_devices_state *target, struct err **e)
{
	struct cgroup_devices_state now, after;
	_cleanup_free_ char *list = NULL;
	_cleanup_free_ struct cgroup_device_rule *writes = NULL;
	size_t n = 0;
	int r;

	if ((r = cgroup_read(dir, "devices.list", &list)) < 0)
		return err_set(e, -r, "cgroup '%s': read devices.list", dir);
	if (cgroup_devices_parse_list(list, &now) < 0)
		return err_setx(e, EINVAL, "cgroup '%s': devices.list: cannot parse '%.64s'", dir, list);
	r = cgroup_devices_transition(&now, target, &writes, &n);
	cgroup_devices_state_clear(&now);
	if (r < 0)
		return err_set(e, -r, "cgroup '%s': devices", dir);
	if ((r = v1_write_rules(dir, writes, n, e)) < 0)
		return r;
	/* The kernel may take a rule without applying it (a parent that
	 * denies the device): check, as runc does, where the list says all. */
	free(list);
	list = NULL;
	if (target->default_allow || cgroup_read(dir, "devices.list", &list) < 0)
		return 0;
	if (cgroup_devices_parse_list(list, &after) == 0) {
		bool same = states_equal(&after, target);
		cgroup_devices_state_clear(&after);
		if (!same)
			return err_setx(e, EPERM,
					"cgroup '%s': devices.list does not hold the rules written (does a parent "
					"cgroup deny some of these devices?)",
					dir);
	}
	return 0;
}

/* The target as a rule list: the default, then the exceptions. */
static struct cgroup_device_rule *canonical(const struct cgroup_devices_state *st, size_t *n)
{
	struct cgroup_device_rule *v = calloc(st->n + 1, sizeof(*v));

	if (v == NULL)
		return NULL;
	v[0] = (struct cgroup_device_rule){st->default_allow, 'a', -1, -1, "rwm"};
	if (st->n)
		memcpy(v + 1, st->rules, st->n * sizeof(*v));
	*n = st->n + 1;
	return v;
}

/* What rules make of a cgroup that starts denying everything (a list
 * that does not start with "a" keeps only what it allows). */
static int model(const struct cgroup_device_rule *rules, size_t n, struct cgroup_devices_state *st, char *why,
		 size_t why_size)
{
	int r;

	memset(st, 0, sizeof(*st));
	if ((r = cgroup_devices_apply(st, rules, n, why, why_size)) < 0)
		cgroup_devices_state_clear(st);
	return r;
}

int cgroup_devices_program(const struct cgroup_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *len,
			   char *why, size_t why_size)
{
	struct cgroup_devices_state st;
	_cleanup_free_ struct cgroup_device_rule *v = NULL;
	size_t nv = 0;
	int r = model(rules, n, &st, why, why_size);

	if (r < 0)
		return r;
	v = canonical(&st, &nv);
	cgroup_devices_state_clear(&st);
	return v ? cgroup_bpf_build(v, nv, ret, len) : -ENOMEM;
}

int cgroup_set_devices(const struct cgroup *cg, const struct cgroup_device_rule *rules, size_t n, struct err **e)
{
	struct cgroup_devices_state target;
	char why[256] = "";
	int r = model(rules, n, &target, why, sizeof(why));

	if (r < 0)
		return r == -EINVAL ? err_setx(e, EINVAL, "cgroup '%s': devices: %s", cg->rel, why)
				    : err_set(e, -r, "cgroup '%s': devices", cg->rel);
	if (cg->mode == CGROUP_MODE_V2) {
		size_t len = 0;
		_cleanup_free_ struct cgroup_device_rule *v = canonical(&target, &len);
		r = v ? cgroup_bpf_devices_attach(cg->unified.path, v, len, e) : err_set(e, ENOMEM, "devices");
	} else {
		const char *dir = cgroup_v1_dir(cg, "devices");
		r = dir ? v1_set_devices(dir, &target, e) : 0;
	}
	cgroup_devices_state_clear(&target);
	return r;
}
