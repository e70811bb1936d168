/*
 * `casulo image VERB ...` and `casulo run ...`: thin verbs over
 * libcasulo-image.  Errors print once as "casulo: image VERB: message";
 * exit status 1 for a failure, 2 for a usage error, 3 for an audit that
 * found something at or above --exit-level.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casulo.h"
#include "common/parse.h"
#include "image/audit.h"
#include "image/bundle.h"
#include "image/image.h"
#include "image/progress.h"
#include "image/ref.h"
#include "image/run.h"
#include "image/store.h"
#include "oci/oci.h"
#include "vmc/vmc.h"

struct image_opts {
	const char *root;
	bool json, quiet;
	const char *platform;
	struct registry_opts reg;
	/* audit */
	const char *format, *exit_level, *sbom, *sbom_file, *ignore_file;
	char **ignores;
	size_t n_ignores;
	/* run */
	bool rm, interactive, tty, vm;
	char **env;
	size_t n_env;
	char **volumes;
	size_t n_volumes;
	const char *name, *audit_level, *runtime_root;
};

static void image_usage(FILE *f)
{
	fprintf(f, "Usage: casulo image VERB [OPTIONS] ARGS\n"
		   "Images in a content-addressed store (--root, default " STORE_DEFAULT_ROOT ").\n"
		   "\n"
		   "Verbs:\n"
		   "  pull REF                  pull from a registry (OCI distribution API)\n"
		   "  import PATH [NAME]        an OCI layout directory, OCI archive or docker-archive tar\n"
		   "  export REF DIR            write the image as an OCI layout directory\n"
		   "  ls                        list the images\n"
		   "  inspect REF               manifest, config and store details (JSON)\n"
		   "  tag REF NAME              give an image another name\n"
		   "  rm REF...                 remove names (prune frees their blobs)\n"
		   "  prune                     remove what no name uses (blobs, layers, partial downloads)\n"
		   "  unpack REF BUNDLE         an OCI bundle: BUNDLE/rootfs and BUNDLE/config.json\n"
		   "  audit REF|PATH            check an image for security problems, offline\n"
		   "\n"
		   "Options:\n"
		   "  --root DIR                the store (also $CASULO_ROOT)\n"
		   "  --json                    JSON output (events for pull and import)\n"
		   "  -q, --quiet               no progress\n"
		   "  --platform OS/ARCH[/VAR]  the image of an index to pull (default linux/this machine)\n"
		   "  --authfile FILE           credentials (auth.json of podman or docker)\n"
		   "  --creds USER:PASSWORD     credentials\n"
		   "  --tls-ca FILE             a CA to trust beside the system's\n"
		   "  --insecure                allow plain HTTP and unverified TLS (loopback is always allowed HTTP)\n"
		   "  --limit-rate BYTES        cap each download's rate (e.g. 10M)\n"
		   "Audit options:\n"
		   "  --format text|json|sarif  findings' format (default text)\n"
		   "  --exit-level SEVERITY     exit 3 when a finding is at least critical|high|medium|low|info\n"
		   "  --ignore ID[:PATH-GLOB]   ignore a check (where its evidence matches the glob)\n"
		   "  --ignore-file FILE        one ignore a line (# comments)\n"
		   "  --sbom cyclonedx|spdx     the package inventory (dpkg, apk) instead of findings\n"
		   "  --sbom-file FILE          write the inventory there and print the findings too\n");
}

static void run_usage(FILE *f)
{
	fprintf(f, "Usage: casulo run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
		   "Run an image as a container (pulled when missing), its rootfs an overlay of its layers.\n"
		   "\n"
		   "Options:\n"
		   "  --rm                      remove the container's files when it exits\n"
		   "  -i, --interactive         keep stdin open\n"
		   "  -t, --tty                 a terminal for the container\n"
		   "  -e, --env KEY=VALUE       set an environment variable\n"
		   "  -v, --volume HOST:CTR[:ro]  bind-mount a host path\n"
		   "  --name NAME               the container's id (default: random)\n"
		   "  --vm                      run it in a VM of its own (casulo-vmm and the default\n"
		   "                            guest beside this program; docs/vm-containers.md)\n"
		   "  --audit-level SEVERITY    refuse an image with audit findings at that level or above\n"
		   "  --runtime-root DIR        casulo-runtime's state directory\n"
		   "  -q, --quiet               no progress of the pull and of the layers' unpacking\n"
		   "  --root DIR, --platform, --authfile, --creds, --tls-ca, --insecure: as for pull\n");
}

static int fail(const char *verb, struct err *e)
{
	fprintf(stderr, "casulo: %s: %s\n", verb, e && e->msg ? e->msg : "failed");
	err_free(&e);
	return 1;
}

static int push_str(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));

	if (nv == NULL)
		return -ENOMEM;
	nv[(*n)++] = (char *)s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

enum {
	O_ROOT = 256,
	O_JSON,
	O_PLATFORM,
	O_AUTHFILE,
	O_CREDS,
	O_TLS_CA,
	O_INSECURE,
	O_LIMIT_RATE,
	O_FORMAT,
	O_EXIT_LEVEL,
	O_IGNORE,
	O_IGNORE_FILE,
	O_SBOM,
	O_SBOM_FILE,
	O_RM,
	O_NAME,
	O_AUDIT_LEVEL,
	O_RUNTIME_ROOT,
	O_VM,
};

static const struct option long_opts[] = {
    {"root", required_argument, NULL, O_ROOT},
    {"json", no_argument, NULL, O_JSON},
    {"quiet", no_argument, NULL, 'q'},
    {"platform", required_argument, NULL, O_PLATFORM},
    {"authfile", required_argument, NULL, O_AUTHFILE},
    {"creds", required_argument, NULL, O_CREDS},
    {"tls-ca", required_argument, NULL, O_TLS_CA},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"limit-rate", required_argument, NULL, O_LIMIT_RATE},
    {"format", required_argument, NULL, O_FORMAT},
    {"exit-level", required_argument, NULL, O_EXIT_LEVEL},
    {"ignore", required_argument, NULL, O_IGNORE},
    {"ignore-file", required_argument, NULL, O_IGNORE_FILE},
    {"sbom", required_argument, NULL, O_SBOM},
    {"sbom-file", required_argument, NULL, O_SBOM_FILE},
    {"rm", no_argument, NULL, O_RM},
    {"interactive", no_argument, NULL, 'i'},
    {"tty", no_argument, NULL, 't'},
    {"env", required_argument, NULL, 'e'},
    {"volume", required_argument, NULL, 'v'},
    {"name", required_argument, NULL, O_NAME},
    {"audit-level", required_argument, NULL, O_AUDIT_LEVEL},
    {"runtime-root", required_argument, NULL, O_RUNTIME_ROOT},
    {"vm", no_argument, NULL, O_VM},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Options for both `image` and `run`; run stops at its image argument so
 * that the command's own options pass through. */
static int parse_opts(int argc, char **argv, bool for_run, struct image_opts *o, const char *verb)
{
	int opt;
	uint64_t rate;

	memset(o, 0, sizeof(*o));
	o->root = getenv("CASULO_ROOT") && *getenv("CASULO_ROOT") ? getenv("CASULO_ROOT") : STORE_DEFAULT_ROOT;
	while ((opt = getopt_long(argc, argv, for_run ? "+hqite:v:" : "hq", long_opts, NULL)) != -1) {
		switch (opt) {
		case O_ROOT:
			o->root = optarg;
			break;
		case O_JSON:
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case O_PLATFORM:
			o->platform = optarg;
			break;
		case O_AUTHFILE:
			o->reg.authfile = optarg;
			break;
		case O_CREDS:
			o->reg.creds = optarg;
			break;
		case O_TLS_CA:
			o->reg.tls_ca = optarg;
			break;
		case O_INSECURE:
			o->reg.insecure = true;
			break;
		case O_LIMIT_RATE:
			if (parse_size(optarg, &rate) < 0 || rate == 0)
				return casulo_usage_error("%s: --limit-rate '%s' is not a size", verb, optarg);
			o->reg.limit_rate = rate;
			break;
		case O_FORMAT:
			o->format = optarg;
			break;
		case O_EXIT_LEVEL:
			o->exit_level = optarg;
			break;
		case O_IGNORE:
			push_str(&o->ignores, &o->n_ignores, optarg);
			break;
		case O_IGNORE_FILE:
			o->ignore_file = optarg;
			break;
		case O_SBOM:
			o->sbom = optarg;
			break;
		case O_SBOM_FILE:
			o->sbom_file = optarg;
			break;
		case O_RM:
			o->rm = true;
			break;
		case 'i':
			o->interactive = true;
			break;
		case 't':
			o->tty = true;
			break;
		case 'e':
			push_str(&o->env, &o->n_env, optarg);
			break;
		case 'v':
			push_str(&o->volumes, &o->n_volumes, optarg);
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case O_AUDIT_LEVEL:
			o->audit_level = optarg;
			break;
		case O_RUNTIME_ROOT:
			o->runtime_root = optarg;
			break;
		case O_VM:
			o->vm = true;
			break;
		case 'h':
			return -1;
		default:
			return 2;
		}
	}
	return 0;
}

static void free_opts(struct image_opts *o)
{
	free(o->ignores);
	free(o->env);
	free(o->volumes);
}

static int open_store(struct store *s, const struct image_opts *o, enum store_mode mode, const char *verb)
{
	struct err *e = NULL;

	if (store_open(s, o->root, mode, &e) < 0)
		return fail(verb, e);
	return 0;
}

static int need_args(int argc, int min, int max, const char *verb, const char *what)
{
	if (argc < min)
		return casulo_usage_error("image %s: expected %s", verb, what);
	if (max >= 0 && argc > max)
		return casulo_usage_error("image %s: unexpected argument", verb);
	return 0;
}

static void human(int64_t b, char *buf, size_t size)
{
	if (b >= 1024LL * 1024 * 1024)
		snprintf(buf, size, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
	else if (b >= 1024 * 1024)
		snprintf(buf, size, "%.1f MiB", (double)b / (1024.0 * 1024));
	else
		snprintf(buf, size, "%.1f KiB", (double)b / 1024.0);
}

static int verb_pull(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct pull_opts po = {.registry = o->reg, .platform = o->platform};
	struct descriptor d;
	struct err *e = NULL;
	char *name = NULL;
	int r;

	if ((r = need_args(argc, 1, 1, "pull", "REF")))
		return r;
	po.progress = progress_new(progress_pick(o->json, o->quiet));
	r = image_pull(s, argv[0], &po, &name, &d, &e);
	progress_free(po.progress);
	if (r < 0)
		return fail("image pull", e);
	if (!o->json)
		printf("%s %s\n", name, d.digest);
	free(name);
	descriptor_free(&d);
	return 0;
}

static int verb_import(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct progress *p;
	struct err *e = NULL;
	char **names = NULL;
	int r;

	if ((r = need_args(argc, 1, 2, "import", "PATH [NAME]")))
		return r;
	p = progress_new(progress_pick(o->json, o->quiet));
	r = image_import(s, argv[0], argc > 1 ? argv[1] : NULL, p, &names, &e);
	progress_free(p);
	if (r < 0)
		return fail("image import", e);
	for (size_t i = 0; names && names[i]; i++) {
		if (!o->json)
			printf("%s\n", names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}

static int verb_export(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct err *e = NULL;
	int r;

	(void)o;
	if ((r = need_args(argc, 2, 2, "export", "REF DIR")))
		return r;
	if (image_export(s, argv[0], argv[1], &e) < 0)
		return fail("image export", e);
	return 0;
}

/* Total size of an image: manifest, config, layers (compressed). */
static int64_t image_size(struct store *s, const struct descriptor *d, struct store_loaded *l, bool *ok)
{
	int64_t size = d->size;

	*ok = store_load(s, d, l, NULL) == 0;
	if (!*ok)
		return size;
	size += l->manifest.config.size;
	for (size_t i = 0; i < l->manifest.n_layers; i++)
		size += l->manifest.layers[i].size;
	return size;
}

static int verb_ls(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct store_image *images;
	struct err *e = NULL;
	json_object *arr = o->json ? json_object_new_array() : NULL;
	size_t n;
	int r;

	(void)argv;
	if ((r = need_args(argc, 0, 0, "ls", "nothing")))
		return r;
	if (store_list(s, &images, &n, &e) < 0)
		return fail("image ls", e);
	if (!o->json && !o->quiet)
		printf("%-60s %-14s %7s %10s\n", "NAME", "DIGEST", "LAYERS", "SIZE");
	for (size_t i = 0; i < n; i++) {
		struct store_loaded l;
		char short_digest[13], size[32];
		bool ok;
		int64_t total = image_size(s, &images[i].manifest, &l, &ok);
		digest_short(images[i].manifest.digest, short_digest);
		human(total, size, sizeof(size));
		if (o->json) {
			json_object *j = json_object_new_object();
			json_object_object_add(j, "name", json_object_new_string(images[i].name));
			json_object_object_add(j, "digest", json_object_new_string(images[i].manifest.digest));
			json_object_object_add(j, "size", json_object_new_int64(total));
			json_object_object_add(j, "layers",
					       json_object_new_int64(ok ? (int64_t)l.manifest.n_layers : -1));
			json_object_object_add(j, "intact", json_object_new_boolean(ok));
			json_object_array_add(arr, j);
		} else if (o->quiet) {
			printf("%s\n", images[i].name);
		} else {
			printf("%-60s %-14s %7zu %10s%s\n", images[i].name, short_digest, ok ? l.manifest.n_layers : 0,
			       size, ok ? "" : "  (damaged: pull again)");
		}
		if (ok)
			store_loaded_free(&l);
	}
	if (o->json) {
		printf("%s\n",
		       json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	}
	store_images_free(images, n);
	return 0;
}

static int verb_inspect(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct store_image im;
	struct store_loaded l;
	struct err *e = NULL;
	json_object *j;
	int r;

	(void)o;
	if ((r = need_args(argc, 1, 1, "inspect", "REF")))
		return r;
	if (store_find(s, argv[0], &im, &e) < 0)
		return fail("image inspect", e);
	if (store_load(s, &im.manifest, &l, &e) < 0) {
		free(im.name);
		descriptor_free(&im.manifest);
		return fail("image inspect", e);
	}
	j = json_object_new_object();
	json_object_object_add(j, "name", json_object_new_string(im.name));
	json_object_object_add(j, "digest", json_object_new_string(im.manifest.digest));
	json_object_object_add(j, "mediaType",
			       json_object_new_string(im.manifest.media_type ? im.manifest.media_type : ""));
	json_object_object_add(j, "manifest", json_tokener_parse(l.manifest_json));
	json_object_object_add(j, "config", json_tokener_parse(l.config_json));
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
	store_loaded_free(&l);
	free(im.name);
	descriptor_free(&im.manifest);
	return 0;
}

static int verb_tag(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct store_image im;
	struct image_ref ref;
	struct err *e = NULL;
	int r;

	(void)o;
	if ((r = need_args(argc, 2, 2, "tag", "REF NAME")))
		return r;
	if (store_find(s, argv[0], &im, &e) < 0)
		return fail("image tag", e);
	if (ref_parse(argv[1], &ref, &e) == 0) {
		r = store_tag(s, ref.name, &im.manifest, &e);
		if (r == 0)
			printf("%s\n", ref.name);
		ref_free(&ref);
	} else {
		r = -1;
	}
	free(im.name);
	descriptor_free(&im.manifest);
	return r < 0 ? fail("image tag", e) : 0;
}

static int verb_rm(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct err *e = NULL;
	int rc = 0, r;

	(void)o;
	if ((r = need_args(argc, 1, -1, "rm", "REF...")))
		return r;
	for (int i = 0; i < argc; i++) {
		struct store_image im;
		if (store_find(s, argv[i], &im, &e) < 0 || store_untag(s, im.name, &e) < 0) {
			rc = fail("image rm", e);
			e = NULL;
		} else {
			printf("%s\n", im.name);
		}
		if (im.name) {
			free(im.name);
			descriptor_free(&im.manifest);
		}
	}
	return rc;
}

static int verb_prune(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct prune_report rep;
	struct err *e = NULL;
	char freed[32];
	int r;

	(void)argv;
	if ((r = need_args(argc, 0, 0, "prune", "nothing")))
		return r;
	if (store_prune(s, &rep, &e) < 0)
		return fail("image prune", e);
	human((int64_t)rep.blob_bytes, freed, sizeof(freed));
	if (o->json)
		printf("{\"blobs\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"layers\":%" PRIu64 ",\"partials\":%" PRIu64
		       ",\"tmp\":%" PRIu64 "}\n",
		       rep.blobs, rep.blob_bytes, rep.layers, rep.partials, rep.tmp);
	else
		printf("removed %" PRIu64 " blobs (%s), %" PRIu64 " unpacked layers, %" PRIu64 " partial downloads\n",
		       rep.blobs, freed, rep.layers, rep.partials);
	return 0;
}

static int verb_unpack(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct progress *p;
	struct err *e = NULL;
	int r;

	if ((r = need_args(argc, 2, 2, "unpack", "REF BUNDLE")))
		return r;
	p = progress_new(progress_pick(o->json, o->quiet));
	r = image_unpack(s, argv[0], argv[1], p, &e);
	progress_free(p);
	return r < 0 ? fail("image unpack", e) : 0;
}

static int load_ignores(const struct image_opts *o, struct audit_opts *ao, struct err **e)
{
	for (size_t i = 0; i < o->n_ignores; i++)
		if (audit_ignore_add(ao, o->ignores[i], e) < 0)
			return -EINVAL;
	if (o->ignore_file && audit_ignore_load(ao, o->ignore_file, e) < 0)
		return -EINVAL;
	return 0;
}

static int verb_audit(struct store *s, const struct image_opts *o, int argc, char **argv)
{
	struct audit_opts ao = {0};
	struct audit_report rep;
	struct err *e = NULL;
	enum audit_format fmt = AUDIT_TEXT;
	enum audit_severity level = AUDIT_SEVERITY_NONE;
	enum sbom_format sbom = SBOM_NONE;
	int r, rc = 0;

	if ((r = need_args(argc, 1, 1, "audit", "REF or PATH")))
		return r;
	if (o->format && audit_format_parse(o->format, &fmt) < 0)
		return casulo_usage_error("image audit: --format '%s' (text, json or sarif)", o->format);
	if (o->exit_level && audit_severity_parse(o->exit_level, &level) < 0)
		return casulo_usage_error("image audit: --exit-level '%s' (critical, high, medium, low, info)",
					  o->exit_level);
	if (o->sbom && sbom_format_parse(o->sbom, &sbom) < 0)
		return casulo_usage_error("image audit: --sbom '%s' (cyclonedx or spdx)", o->sbom);
	if (load_ignores(o, &ao, &e) < 0) {
		audit_opts_free(&ao);
		return fail("image audit", e);
	}
	if (audit_image(s, argv[0], &ao, &rep, &e) < 0) {
		audit_opts_free(&ao);
		return fail("image audit", e);
	}
	if (sbom != SBOM_NONE && o->sbom_file == NULL) {
		r = sbom_write(&rep, sbom, stdout, &e);
	} else {
		r = sbom != SBOM_NONE ? sbom_write_file(&rep, sbom, o->sbom_file, &e) : 0;
		if (r == 0)
			audit_report_write(&rep, fmt, stdout);
		if (r == 0 && level != AUDIT_SEVERITY_NONE && audit_report_max(&rep) >= level)
			rc = 3;
	}
	audit_report_free(&rep);
	audit_opts_free(&ao);
	return r < 0 ? fail("image audit", e) : rc;
}

static const struct {
	const char *name;
	int (*fn)(struct store *s, const struct image_opts *o, int argc, char **argv);
	enum store_mode mode;
} verbs[] = {
    {"pull", verb_pull, STORE_SHARED},	    {"import", verb_import, STORE_SHARED},
    {"export", verb_export, STORE_SHARED},  {"ls", verb_ls, STORE_SHARED},
    {"list", verb_ls, STORE_SHARED},	    {"inspect", verb_inspect, STORE_SHARED},
    {"tag", verb_tag, STORE_SHARED},	    {"rm", verb_rm, STORE_SHARED},
    {"prune", verb_prune, STORE_EXCLUSIVE}, {"unpack", verb_unpack, STORE_SHARED},
    {"audit", verb_audit, STORE_SHARED},
};

int casulo_image(int argc, char **argv)
{
	struct image_opts o;
	struct store s;
	const char *verb;
	char what[64];
	int r;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		image_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	snprintf(what, sizeof(what), "image %s", verb);
	optind = 2;
	r = parse_opts(argc, argv, false, &o, what);
	if (r == -1) {
		image_usage(stdout);
		free_opts(&o);
		return 0;
	}
	if (r) {
		free_opts(&o);
		return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		if (strcmp(verbs[i].name, verb) != 0)
			continue;
		if ((r = open_store(&s, &o, verbs[i].mode, what)) == 0) {
			r = verbs[i].fn(&s, &o, argc - optind, argv + optind);
			store_close(&s);
		}
		free_opts(&o);
		return r;
	}
	free_opts(&o);
	return casulo_usage_error("image: unknown verb '%s'", verb);
}

/* --audit-level: refuse an image whose audit finds that much. */
static int audit_gate(struct store *s, const struct store_loaded *img, void *ctx, struct err **e)
{
	const struct image_opts *o = ctx;
	enum audit_severity level;
	struct audit_opts ao = {0};
	struct audit_report rep;
	int r;

	if (audit_severity_parse(o->audit_level, &level) < 0)
		return err_setx(e, EINVAL, "--audit-level '%s'", o->audit_level);
	if ((r = audit_loaded(s, img, NULL, &ao, &rep, e)) < 0)
		return r;
	if (audit_report_max(&rep) >= level) {
		audit_report_write(&rep, AUDIT_TEXT, stderr);
		r = err_setx(e, EPERM, "image refused: %zu audit findings at %s or above (--audit-level)",
			     audit_report_count(&rep, level), audit_severity_name(level));
	}
	audit_report_free(&rep);
	return r;
}

/* --vm: the bundle runs in its own microVM, as casulo-runtime-vm runs it. */
static int vm_backend_run(const struct run_backend *b, const char *id, const char *bundle, const struct run_opts *o,
			  int *status, struct err **e)
{
	struct oci_global g = {.root = o->runtime_root ? o->runtime_root : OCI_DEFAULT_ROOT};
	struct oci_create_opts c = {.bundle = bundle};
	struct vmc_options vo = {.default_vm = true};

	(void)b;
	return vmc_run(&g, &vo, id, &c, status, e);
}

static const struct run_backend run_backend_vm = {
    .name = "vm",
    .run = vm_backend_run,
};

int casulo_run(int argc, char **argv)
{
	struct image_opts o;
	struct run_opts ro = {0};
	struct store s;
	struct err *e = NULL;
	struct volume *vols = NULL;
	int r, status = 0;

	optind = 1;
	r = parse_opts(argc, argv, true, &o, "run");
	if (r == -1) {
		run_usage(stdout);
		free_opts(&o);
		return 0;
	}
	if (r) {
		free_opts(&o);
		return r;
	}
	if (optind >= argc) {
		free_opts(&o);
		return casulo_usage_error("run: expected an IMAGE");
	}
	if (o.audit_level) {
		enum audit_severity level;
		if (audit_severity_parse(o.audit_level, &level) < 0) {
			free_opts(&o);
			return casulo_usage_error("run: --audit-level '%s' (critical, high, medium, low, info)",
						  o.audit_level);
		}
		ro.check = audit_gate;
		ro.check_ctx = &o;
	}
	for (size_t i = 0; i < o.n_env; i++)
		if (strchr(o.env[i], '=') == NULL || o.env[i][0] == '=') {
			r = casulo_usage_error("run: -e '%s': expected KEY=VALUE", o.env[i]);
			free_opts(&o);
			return r;
		}
	vols = calloc(o.n_volumes + 1, sizeof(*vols));
	for (size_t i = 0; vols && i < o.n_volumes; i++)
		if (volume_parse(o.volumes[i], &vols[i], &e) < 0) {
			for (size_t j = 0; j < i; j++)
				volume_free(&vols[j]);
			free(vols);
			free_opts(&o);
			return fail("run", e);
		}
	ro.image = argv[optind];
	ro.args = argv + optind + 1;
	ro.n_args = (size_t)(argc - optind - 1);
	ro.env = o.env;
	ro.n_env = o.n_env;
	ro.volumes = vols;
	ro.n_volumes = o.n_volumes;
	ro.rm = o.rm;
	ro.interactive = o.interactive;
	ro.tty = o.tty;
	ro.name = o.name;
	ro.runtime_root = o.runtime_root;
	ro.pull.registry = o.reg;
	ro.pull.platform = o.platform;
	if ((r = open_store(&s, &o, STORE_SHARED, "run")) == 0) {
		ro.pull.progress = progress_new(progress_pick(false, o.quiet));
		r = image_run(&s, &ro, o.vm ? &run_backend_vm : &run_backend_container, &status, &e) < 0
			? fail("run", e)
			: status;
		progress_free(ro.pull.progress);
		store_close(&s);
	}
	for (size_t i = 0; i < o.n_volumes; i++)
		volume_free(&vols[i]);
	free(vols);
	free_opts(&o);
	return r;
}
