/* Unit tests of libcasulo-image's pure parts: digests, references, the
 * manifest/index/config parsers, tar-entry paths, the audit rules, user
 * resolution, package databases, auth challenges and the layer reader. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "image/audit.h"
#include "image/bundle.h"
#include "image/digest.h"
#include "image/layer.h"
#include "image/manifest.h"
#include "image/ref.h"
#include "image/registry.h"
#include "image/tarpath.h"
#include "test.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

TEST(digest_validation)
{
	struct err *e = NULL;
	char d[DIGEST_BUF];

	CHECK(digest_valid("sha256:" D64));
	CHECK(!digest_valid("sha256:" D64 "0"));
	CHECK(!digest_valid("sha256:0123"));
	CHECK(!digest_valid("SHA256:" D64));
	CHECK(!digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
	CHECK(!digest_valid(NULL));
	CHECK(digest_check("sha512:abcd", "layer", &e) < 0);
	CHECK_CONTAINS(e->msg, "unsupported digest algorithm");
	err_free(&e);
	digest_buffer("", 0, d);
	CHECK_STR(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void check_ref(const char *in, const char *name, const char *registry, const char *repo)
{
	struct image_ref r;
	struct err *e = NULL;

	CHECK(ref_parse(in, &r, &e) == 0);
	CHECK_STR(r.name, name);
	CHECK_STR(r.registry, registry);
	CHECK_STR(r.repository, repo);
	ref_free(&r);
}

TEST(references_normalize_as_docker_does)
{
	struct image_ref r;
	struct err *e = NULL;

	check_ref("busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox");
	check_ref("user/app:1.2", "docker.io/user/app:1.2", "docker.io", "user/app");
	check_ref("127.0.0.1:5000/a/b:x", "127.0.0.1:5000/a/b:x", "127.0.0.1:5000", "a/b");
	check_ref("localhost/app", "localhost/app:latest", "localhost", "app");
	check_ref("quay.io/x/y@sha256:" D64, "quay.io/x/y@sha256:" D64, "quay.io", "x/y");
	check_ref("a__b/c-d.e:t", "docker.io/a__b/c-d.e:t", "docker.io", "a__b/c-d.e");
	CHECK(ref_parse("UPPER/case", &r, &e) < 0);
	CHECK_CONTAINS(e->msg, "invalid repository");
	err_free(&e);
	CHECK(ref_parse("x:bad tag", &r, &e) < 0);
	CHECK_CONTAINS(e->msg, "invalid tag");
	err_free(&e);
	CHECK(ref_parse("x@sha256:12", &r, &e) < 0);
	err_free(&e);
	CHECK(ref_parse("", &r, &e) < 0);
	err_free(&e);
	CHECK(ref_registry_is_loopback("127.0.0.1:5000"));
	CHECK(ref_registry_is_loopback("localhost:1"));
	CHECK(ref_registry_is_loopback("[::1]:5000"));
	CHECK(!ref_registry_is_loopback("example.com"));
	CHECK(!ref_registry_is_loopback("localhost.example.com"));
}

#define MANIFEST(layers)                                                                                               \
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"" MT_OCI_CONFIG        \
	"\",\"digest\":\"sha256:" D64 "\",\"size\":12},\"layers\":[" layers "]}"
#define LAYER(mt, size) "{\"mediaType\":\"" mt "\",\"digest\":\"sha256:" D64 "\",\"size\":" #size "}"

static int parse(const char *json, struct manifest *m, struct err **e)
{
	return manifest_parse(json, strlen(json), "manifest", m, e);
}

TEST(manifest_parsing)
{
	struct manifest m;
	struct err *e = NULL;

	CHECK(parse(MANIFEST(LAYER(MT_OCI_LAYER_GZIP, 5) "," LAYER(MT_OCI_LAYER_ZSTD, 6)), &m, &e) == 0);
	CHECK_INT(m.kind, ==, MANIFEST_IMAGE);
	CHECK_INT(m.n_layers, ==, 2);
	CHECK_INT(m.layers[1].size, ==, 6);
	CHECK_INT(m.config.size, ==, 12);
	manifest_free(&m);
	CHECK(parse(MANIFEST(LAYER("text/plain", 5)), &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "layers[0]: unsupported layer media type 'text/plain'");
	err_free(&e);
	CHECK(parse(MANIFEST(LAYER(MT_OCI_LAYER, -1)), &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "layers[0].size: negative size");
	err_free(&e);
	CHECK(parse(MANIFEST("{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"sha256:zz\",\"size\":1}"), &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "layers[0].digest");
	err_free(&e);
	CHECK(parse("{\"schemaVersion\":1,\"fsLayers\":[]}", &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "schemaVersion 1 is not supported");
	err_free(&e);
	CHECK(parse("{\"schemaVersion\":2,\"layers\":[]}", &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "config: missing");
	err_free(&e);
	CHECK(parse("{\"schemaVersion\":2", &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "truncated");
	err_free(&e);
	CHECK(parse("{\"schemaVersion\":2} x", &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "data after the document");
	err_free(&e);
	CHECK(parse("[1]", &m, &e) < 0);
	err_free(&e);
	CHECK(parse("{\"schemaVersion\":\"2\"}", &m, &e) < 0);
	CHECK_CONTAINS(e->msg, "schemaVersion: expected an integer, got string");
	err_free(&e);
}

TEST(index_and_platforms)
{
	static const char idx[] = "{\"schemaVersion\":2,\"manifests\":["
				  "{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":1,"
				  "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
				  "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":2,"
				  "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"},"
				  "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}";
	struct manifest m;
	struct err *e = NULL;

	CHECK(parse(idx, &m, &e) == 0);
	CHECK_INT(m.kind, ==, MANIFEST_INDEX);
	CHECK_INT(manifest_select_platform(&m, "linux", "amd64", NULL, &e), ==, 1);
	CHECK_STR(m.manifests[1].ref_name, "v1");
	CHECK_INT(manifest_select_platform(&m, "linux", "arm", "v7", &e), ==, 0);
	CHECK(manifest_select_platform(&m, "linux", "arm", "v6", &e) < 0);
	CHECK_CONTAINS(e->msg, "it has: linux/arm/v7, linux/amd64");
	err_free(&e);
	manifest_free(&m);
}

TEST(image_config_parsing)
{
	static const char cfg[] =
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"app\",\"Env\":[\"A=1\"],"
	    "\"Entrypoint\":[\"/e\"],\"Cmd\":[\"c\",\"d\"],\"WorkingDir\":\"/w\",\"Labels\":{\"k\":\"v\"}},"
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" D64 "\"]},"
	    "\"history\":[{\"created_by\":\"x\"},{\"created_by\":\"y\",\"empty_layer\":true}]}";
	struct image_config c;
	struct err *e = NULL;

	CHECK(image_config_parse(cfg, strlen(cfg), "config", &c, &e) == 0);
	CHECK_STR(c.user, "app");
	CHECK_INT(c.n_cmd, ==, 2);
	CHECK_STR(c.entrypoint[0], "/e");
	CHECK_STR(c.working_dir, "/w");
	CHECK_STR(c.labels[0].value, "v");
	CHECK_INT(c.n_diff_ids, ==, 1);
	CHECK(c.history[1].empty_layer);
	image_config_free(&c);
	{
		static const char bad[] = "{\"config\":{\"Cmd\":\"sh\"},\"rootfs\":{}}";
		CHECK(image_config_parse(bad, strlen(bad), "config", &c, &e) < 0);
	}
	CHECK_CONTAINS(e->msg, "config.Cmd: expected an array, got string");
	err_free(&e);
	CHECK(image_config_parse("{\"config\":{}}", strlen("{\"config\":{}}"), "config", &c, &e) < 0);
	CHECK_CONTAINS(e->msg, "rootfs: missing");
	err_free(&e);
}

static void check_clean(const char *in, int rc, const char *out)
{
	char buf[256];

	CHECK_INT(tarpath_clean(in, buf, sizeof(buf)), ==, rc);
	if (rc == 0)
		CHECK_STR(buf, out);
}

TEST(tar_entry_paths)
{
	char t[256];

	check_clean("./etc/passwd", 0, "etc/passwd");
	check_clean("/etc//./passwd/", 0, "etc/passwd");
	check_clean("./", 0, "");
	check_clean("", 0, "");
	check_clean("../x", -EINVAL, NULL);
	check_clean("a/../../x", -EINVAL, NULL);
	check_clean("a/..", -EINVAL, NULL);
	check_clean("a/..b/c", 0, "a/..b/c");
	check_clean("...", 0, "...");
	CHECK_INT(tarpath_classify("a/b/.wh.c", t, sizeof(t)), ==, TARPATH_WHITEOUT);
	CHECK_STR(t, "a/b/c");
	CHECK_INT(tarpath_classify(".wh.top", t, sizeof(t)), ==, TARPATH_WHITEOUT);
	CHECK_STR(t, "top");
	CHECK_INT(tarpath_classify("d/.wh..wh..opq", t, sizeof(t)), ==, TARPATH_OPAQUE);
	CHECK_STR(t, "d");
	CHECK_INT(tarpath_classify(".wh..wh..opq", t, sizeof(t)), ==, TARPATH_OPAQUE);
	CHECK_STR(t, "");
	CHECK_INT(tarpath_classify("d/.wh..wh.plnk", t, sizeof(t)), ==, TARPATH_RESERVED);
	CHECK_INT(tarpath_classify("d/.wh.", t, sizeof(t)), ==, -EINVAL);
	CHECK_INT(tarpath_classify("d/x.wh.y", t, sizeof(t)), ==, TARPATH_NORMAL);
	CHECK(tarpath_within("a/b", "a"));
	CHECK(!tarpath_within("ab", "a"));
	CHECK(tarpath_within("a", ""));
}

TEST(string_map)
{
	struct strmap m;
	char key[32];

	strmap_init(&m);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK(strmap_put(&m, key, (void *)(long)(i + 1), NULL) == 0);
	}
	CHECK_INT(m.count, ==, 1000);
	CHECK_INT((long)strmap_get(&m, "k500"), ==, 501);
	CHECK(!strmap_has(&m, "k1000"));
	CHECK(strmap_add_with_parents(&m, "x/y/z") == 0);
	CHECK(strmap_has(&m, "x") && strmap_has(&m, "x/y") && strmap_has(&m, ""));
	strmap_free(&m, NULL);
}

static const char KEY[] = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIb3Yq4cHUqSXcmmGxqbHA5b9m5xUu2d\n"
			  "-----END PRIVATE KEY-----\n";

TEST(audit_secret_rules)
{
	const char *kind = NULL;

	CHECK_STR(audit_secret_file("app/.env")->id, "env-file");
	CHECK(audit_secret_file("app/.env.example") == NULL);
	CHECK_STR(audit_secret_file("root/.ssh/id_rsa")->id, "private-key");
	CHECK(audit_secret_file("root/.ssh/id_rsa.pub") == NULL);
	CHECK_STR(audit_secret_file("home/u/.aws/credentials")->id, "cloud-credentials");
	CHECK_STR(audit_secret_file("root/.npmrc")->id, "credential-file");
	CHECK(audit_secret_file("etc/ssl/certs/ca.pem") != NULL);
	CHECK(
	    !audit_secret_file_confirmed(audit_secret_file("x.pem"), "x.pem", "-----BEGIN CERTIFICATE-----\nAAAA", 32));
	CHECK(audit_secret_file_confirmed(audit_secret_file("x.pem"), "x.pem", KEY, strlen(KEY)));
	CHECK(!audit_secret_file_confirmed(audit_secret_file(".npmrc"), ".npmrc", "registry=x\n", 11));
	CHECK(audit_secret_file_confirmed(audit_secret_file(".npmrc"), ".npmrc", "//r/:_authToken=x\n", 18));
	CHECK(!audit_secret_file_confirmed(audit_secret_file(".env"), ".env", "# nothing\n", 10));
	CHECK(audit_scan_content(KEY, strlen(KEY), &kind) != NULL);
	CHECK(audit_scan_content("-----BEGIN RSA PRIVATE KEY-----\n", 32, &kind) == NULL); /* a header alone */
	CHECK_STR(audit_scan_content("k=AKIAQ3EGRA7XW2LKPM5N;", 23, &kind)->id, "cloud-credentials");
	CHECK(audit_scan_content("AKIAIOSFODNN7EXAMPLE", 20, &kind) == NULL);
	CHECK(audit_scan_content("XAKIAQ3EGRA7XW2LKPM5N", 21, &kind) == NULL);
	CHECK(audit_scan_content("AKIAQ3EGRA7XW2LKPM5", 19, &kind) == NULL);
	CHECK_STR(audit_scan_content("ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", 40, &kind)->id, "token");
	CHECK_STR(kind, "GitHub token");
	CHECK(audit_scan_content("ghp_short", 9, &kind) == NULL);
	CHECK(audit_scan_content("xoxb-1234567890-abc", 19, &kind) != NULL);
	CHECK(!audit_scan_path("usr/share/doc/pkg/key.pem"));
	CHECK(!audit_scan_path("usr/lib/python3/dist-packages/x/tests/key.pem"));
	CHECK(audit_scan_path("app/tests.py"));
	CHECK(audit_scan_path("root/.ssh/id_rsa"));
}

TEST(audit_config_rules)
{
	CHECK(audit_secret_var("DB_PASSWORD", "x"));
	CHECK(audit_secret_var("github_token", "x"));
	CHECK(!audit_secret_var("DB_PASSWORD", ""));
	CHECK(!audit_secret_var("DB_PASSWORD_FILE", "/run/secrets/db"));
	CHECK(!audit_secret_var("PATH", "/bin"));
	CHECK(!audit_secret_var("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D"));
	CHECK(audit_secret_var("DEPLOY", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"));
	CHECK(audit_remote_source("/bin/sh -c #(nop) ADD https://x/y.tgz in /"));
	CHECK(audit_remote_source("ADD --chown=1 http://x/y /y # buildkit"));
	CHECK(audit_remote_source("RUN curl -fsSL https://get.x | sh"));
	CHECK(!audit_remote_source("/bin/sh -c #(nop) ADD file:abc in /"));
	CHECK(!audit_remote_source("RUN curl -o x https://y && sha256sum -c x.sha"));
	CHECK(audit_user_is_root(NULL));
	CHECK(audit_user_is_root(""));
	CHECK(audit_user_is_root("root:root"));
	CHECK(audit_user_is_root("0"));
	CHECK(!audit_user_is_root("1000:1000"));
	CHECK(!audit_user_is_root("app"));
}

struct emitted {
	char ids[8][32], ev[8][64];
	int n;
};

static void collect(void *ctx, const struct audit_check *c, const char *evidence, const char *detail)
{
	struct emitted *em = ctx;

	(void)detail;
	if (em->n < 8) {
		snprintf(em->ids[em->n], 32, "%s", c->id);
		snprintf(em->ev[em->n], 64, "%s", evidence);
		em->n++;
	}
}

TEST(audit_account_rules)
{
	struct emitted em = {0};

	audit_accounts("root:x:0:0::/:/bin/sh\nfoo:x:0:1::/:/bin/sh\nbar::5:5::/:/bin/sh\n#x::0:0\n",
		       "root::1:::::\nfoo:!:1:::::\nbar:*:1::::::\n", "a:x:1:\nb:x:1:\nc:x:2:\n", collect, &em);
	CHECK_INT(em.n, ==, 4);
	CHECK_STR(em.ids[0], "empty-password");
	CHECK_STR(em.ev[0], "etc/shadow");
	CHECK_STR(em.ids[1], "empty-password");
	CHECK_STR(em.ev[1], "etc/passwd");
	CHECK_STR(em.ids[2], "duplicate-uid");
	CHECK_STR(em.ids[3], "duplicate-gid");
	memset(&em, 0, sizeof(em));
	audit_accounts("root:x:0:0::/:/bin/sh\n", "root:*:1:::::\n", "root:x:0:\n", collect, &em);
	CHECK_INT(em.n, ==, 0);
	audit_accounts(NULL, NULL, NULL, collect, &em);
	CHECK_INT(em.n, ==, 0);
}

TEST(user_resolution)
{
	static const char passwd[] = "root:x:0:0:r:/root:/bin/sh\napp:x:1000:100::/:/bin/sh\n";
	static const char group[] = "root:x:0:\nusers:x:100:\ndocker:x:999:app,other\nwheel:x:10:root\n";
	struct user_ids u;
	struct err *e = NULL;

	CHECK(user_resolve("app", passwd, group, &u, &e) == 0);
	CHECK_INT(u.uid, ==, 1000);
	CHECK_INT(u.gid, ==, 100);
	CHECK_INT(u.n_gids, ==, 1);
	CHECK_INT(u.gids[0], ==, 999);
	user_ids_free(&u);
	CHECK(user_resolve("app:wheel", passwd, group, &u, &e) == 0);
	CHECK_INT(u.gid, ==, 10);
	CHECK_INT(u.n_gids, ==, 0);
	CHECK(user_resolve("1234:5", NULL, NULL, &u, &e) == 0);
	CHECK_INT(u.uid, ==, 1234);
	CHECK_INT(u.gid, ==, 5);
	CHECK(user_resolve(NULL, passwd, group, &u, &e) == 0);
	CHECK_INT(u.uid, ==, 0);
	CHECK_INT(u.n_gids, ==, 1); /* root is in wheel */
	user_ids_free(&u);
	CHECK(user_resolve("ghost", passwd, group, &u, &e) < 0);
	CHECK_CONTAINS(e->msg, "user 'ghost': not found");
	err_free(&e);
	CHECK(user_resolve("app:ghosts", passwd, group, &u, &e) < 0);
	CHECK_CONTAINS(e->msg, "group 'ghosts': not found");
	err_free(&e);
	CHECK(user_resolve("app", NULL, NULL, &u, &e) < 0);
	err_free(&e);
}

static int n_pkgs;
static char last_pkg[64], last_ver[64], last_src[64];

static void on_pkg(void *ctx, const char *name, const char *version, const char *arch, const char *source,
		   const char *license)
{
	(void)ctx;
	(void)arch;
	(void)license;
	n_pkgs++;
	snprintf(last_pkg, sizeof(last_pkg), "%s", name);
	snprintf(last_ver, sizeof(last_ver), "%s", version);
	snprintf(last_src, sizeof(last_src), "%s", source ? source : "");
}

TEST(package_databases)
{
	static const char dpkg[] = "Package: a\nStatus: install ok installed\nVersion: 1:2.0-1\nArchitecture: amd64\n\n"
				   "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
				   "Package: half\nStatus: install reinstreq half-installed\nVersion: 1\n\n"
				   "Package: libz\nStatus: install ok installed\nSource: zlib (1:1.2)\nVersion: 1:1.2\n"
				   "Description: x\n y\n";
	static const char apk[] = "P:musl\nV:1.2\nA:x86_64\nL:MIT\n\nP:zlib\nV:1.3\n";
	struct package p = {.type = "deb", .name = "a", .version = "1:2.0-1", .arch = "amd64"};
	char *purl;

	n_pkgs = 0;
	sbom_parse_dpkg(dpkg, strlen(dpkg), on_pkg, NULL);
	CHECK_INT(n_pkgs, ==, 2);
	CHECK_STR(last_pkg, "libz");
	CHECK_STR(last_src, "zlib");
	n_pkgs = 0;
	sbom_parse_apk(apk, strlen(apk), on_pkg, NULL);
	CHECK_INT(n_pkgs, ==, 2);
	CHECK_STR(last_ver, "1.3");
	purl = sbom_purl(&p, "debian", "12");
	CHECK_STR(purl, "pkg:deb/debian/a@1%3A2.0-1?arch=amd64&distro=debian-12");
	free(purl);
}

TEST(auth_challenges_and_credentials)
{
	char v[128], path[] = "/tmp/casulo-auth-XXXXXX";
	char *user = NULL, *pass = NULL;
	struct err *e = NULL;
	int fd;
	static const char auth[] =
	    "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"ZDpodWI=\"},"
	    "\"reg.example\":{\"auth\":\"dTpw\"},\"reg.example/team\":{\"auth\":\"dGVhbTpzZWNyZXQ=\"}}}";

	CHECK(registry_challenge_param("Bearer realm=\"https://a/t\",service=\"reg\",scope=\"repository:x:pull\"",
				       "service", v, sizeof(v)) == 0);
	CHECK_STR(v, "reg");
	CHECK(registry_challenge_param("Bearer realm=\"https://a/t\",scope=\"a,b\"", "scope", v, sizeof(v)) == 0);
	CHECK_STR(v, "a,b");
	CHECK(registry_challenge_param("Basic realm=plain", "realm", v, sizeof(v)) == 0);
	CHECK_STR(v, "plain");
	CHECK(registry_challenge_param("Bearer realm=\"x\"", "nope", v, sizeof(v)) < 0);
	fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, auth, strlen(auth)) == (ssize_t)strlen(auth));
	close(fd);
	CHECK(registry_find_credentials(path, "docker.io", "library/x", &user, &pass, &e) == 0);
	CHECK_STR(user, "d");
	CHECK_STR(pass, "hub");
	free(user);
	free(pass);
	CHECK(registry_find_credentials(path, "reg.example", "team/app", &user, &pass, &e) == 0);
	CHECK_STR(user, "team"); /* the namespace entry wins */
	free(user);
	free(pass);
	CHECK(registry_find_credentials(path, "reg.example", "other/app", &user, &pass, &e) == 0);
	CHECK_STR(user, "u");
	free(user);
	free(pass);
	CHECK_INT(registry_find_credentials(path, "none.example", "x", &user, &pass, &e), ==, -ENOENT);
	unlink(path);
}

/* A one-entry tar: header + data + end blocks. */
static size_t make_tar(unsigned char *out, const char *name, const char *data)
{
	size_t len = strlen(data), blocks = (len + 511) / 512;
	unsigned sum = 0;

	memset(out, 0, 512 * (3 + blocks));
	snprintf((char *)out, 100, "%s", name);
	snprintf((char *)out + 100, 8, "0000644");
	snprintf((char *)out + 108, 8, "0000000");
	snprintf((char *)out + 116, 8, "0000000");
	snprintf((char *)out + 124, 12, "%011zo", len);
	snprintf((char *)out + 136, 12, "%011o", 0);
	out[156] = '0';
	memcpy(out + 257, "ustar\00000", 8);
	memset(out + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += out[i];
	snprintf((char *)out + 148, 8, "%06o", sum);
	memcpy(out + 512, data, len);
	return 512 * (3 + blocks);
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("layer", 0);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		return -1;
	lseek(fd, 0, SEEK_SET);
	return fd;
}

TEST(layer_reader_checks_both_digests)
{
	static unsigned char tar[4096], gz[4096];
	uLongf gzlen;
	char diff[DIGEST_BUF], blob[DIGEST_BUF];
	size_t n = make_tar(tar, "hello.txt", "hello world\n");
	struct layer_reader lr;
	struct archive_entry *ent;
	struct err *e = NULL;
	z_stream z = {0};
	char buf[64];
	int fd;

	/* gzip it */
	CHECK(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	z.next_in = tar;
	z.avail_in = (uInt)n;
	z.next_out = gz;
	z.avail_out = sizeof(gz);
	CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
	gzlen = z.total_out;
	deflateEnd(&z);
	digest_buffer(tar, n, diff);
	digest_buffer(gz, gzlen, blob);

	fd = memfd_with(gz, gzlen);
	CHECK(layer_open(&lr, fd, blob, diff, &e) == 0);
	CHECK_INT(lr.compression, ==, LAYER_GZIP);
	CHECK_INT(layer_next(&lr, &ent, &e), ==, 1);
	CHECK_INT(layer_read_data(&lr, buf, sizeof(buf), &e), ==, 12);
	CHECK_INT(layer_next(&lr, &ent, &e), ==, 0);
	layer_close(&lr);
	close(fd);

	/* a wrong diff_id is caught at the end */
	fd = memfd_with(gz, gzlen);
	CHECK(layer_open(&lr, fd, blob, "sha256:" D64, &e) == 0);
	CHECK_INT(layer_next(&lr, &ent, &e), ==, 1);
	CHECK(layer_next(&lr, &ent, &e) < 0);
	CHECK_CONTAINS(e->msg, "diff_id mismatch");
	err_free(&e);
	layer_close(&lr);
	close(fd);

	/* a truncated gzip stream */
	fd = memfd_with(gz, gzlen / 2);
	if (layer_open(&lr, fd, NULL, NULL, &e) == 0) { /* the error comes with the first header, or later */
		int r;
		while ((r = layer_next(&lr, &ent, &e)) == 1)
			;
		CHECK(r < 0);
		layer_close(&lr);
	}
	CHECK_CONTAINS(e->msg, "truncated");
	err_free(&e);
	close(fd);

	/* plain tar: blob digest == diff_id */
	fd = memfd_with(tar, n);
	CHECK(layer_open(&lr, fd, diff, diff, &e) == 0);
	CHECK_INT(lr.compression, ==, LAYER_TAR);
	CHECK_INT(layer_next(&lr, &ent, &e), ==, 1);
	CHECK_INT(layer_next(&lr, &ent, &e), ==, 0);
	layer_close(&lr);
	close(fd);
}
