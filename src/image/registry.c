#include "image/registry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "casulo-config.h"
#include "image/jsonx.h"
#include "image/progress.h"
#include "image/ref.h"
#include "oci/util.h"

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define USER_AGENT "casulo/" CASULO_VERSION
#define MANIFEST_ACCEPT "Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST
#define DOWNLOAD_RETRIES 3

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* --- a response held in memory --- */

struct mem {
	char *data;
	size_t len, max;
	bool too_big;
	char *content_type, *docker_digest, *www_authenticate;
};

static size_t mem_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct mem *m = userdata;
	size_t n = size * nmemb;
	char *nd;

	if (m->len + n > m->max) {
		m->too_big = true;
		return 0;
	}
	nd = realloc(m->data, m->len + n + 1);
	if (nd == NULL)
		return 0;
	memcpy(nd + m->len, ptr, n);
	m->data = nd;
	m->len += n;
	m->data[m->len] = '\0';
	return n;
}

/* "Name: value\r\n" when name matches: the trimmed value. */
static char *header_value(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	const char *v, *end = line + n;

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return NULL;
	v = line + k + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return strndup(v, (size_t)(end - v));
}

static size_t mem_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct mem *m = userdata;
	size_t n = size * nmemb;
	char *v;

	/* A new response (after a redirect) starts afresh. */
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		free(m->content_type);
		free(m->docker_digest);
		free(m->www_authenticate);
		m->content_type = m->docker_digest = m->www_authenticate = NULL;
	}
	if ((v = header_value(ptr, n, "Content-Type"))) {
		free(m->content_type);
		m->content_type = v;
	} else if ((v = header_value(ptr, n, "Docker-Content-Digest"))) {
		free(m->docker_digest);
		m->docker_digest = v;
	} else if ((v = header_value(ptr, n, "WWW-Authenticate"))) {
		free(m->www_authenticate);
		m->www_authenticate = v;
	}
	return n;
}

static void mem_free(struct mem *m)
{
	free(m->data);
	free(m->content_type);
	free(m->docker_digest);
	free(m->www_authenticate);
	memset(m, 0, sizeof(*m));
}

/* --- handles --- */

static CURL *new_handle(struct registry *r, const char *url, struct curl_slist *headers)
{
	CURL *c = curl_easy_init();

	if (c == NULL)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Redirects (to blob storage) may not downgrade an HTTPS registry. */
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
			 r->o.insecure || (r->base && strncmp(r->base, "http://", 7) == 0) ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A stalled transfer (under 1 byte/s for a minute) fails, resumable. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
	if (r->o.limit_rate)
		curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)r->o.limit_rate);
	if (r->ca_blob) {
		struct curl_blob blob = {.data = r->ca_blob, .len = r->ca_len, .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (r->o.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	return c;
}

static struct curl_slist *auth_headers(struct registry *r, const char *extra)
{
	struct curl_slist *h = NULL, *t;

	if (r->auth && (t = curl_slist_append(h, r->auth)))
		h = t;
	if (extra && (t = curl_slist_append(h, extra)))
		h = t;
	return h;
}

static int curl_error(struct err **e, struct registry *r, const char *what, CURLcode rc, const char *detail)
{
	const char *hint = "";

	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
		hint = " (trust its CA with --tls-ca FILE)";
	return err_setx(e, EIO, "registry %s: %s: %s%s", r->host, what,
			detail && *detail ? detail : curl_easy_strerror(rc), hint);
}

/* GET url into m; *status receives the HTTP status. */
static int get(struct registry *r, const char *url, const char *extra_header, bool with_auth, size_t max, struct mem *m,
	       long *status, struct err **e)
{
	struct curl_slist *h =
	    with_auth ? auth_headers(r, extra_header) : (extra_header ? curl_slist_append(NULL, extra_header) : NULL);
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = new_handle(r, url, h);
	CURLcode rc;

	memset(m, 0, sizeof(*m));
	m->max = max;
	if (c == NULL) {
		curl_slist_free_all(h);
		return err_set(e, ENOMEM, "registry %s", r->host);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, mem_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, m);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(c);
	r->last_curl = (int)rc;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (m->too_big)
		return err_setx(e, EFBIG, "registry %s: %s: response larger than %zu bytes", r->host, url, max);
	if (rc != CURLE_OK)
		return curl_error(e, r, url, rc, errbuf);
	return 0;
}

/* --- credentials --- */

static int base64_decode(const char *in, char **out)
{
	size_t n = strlen(in);
	unsigned char *buf = malloc(n / 4 * 3 + 4);
	int len;

	if (buf == NULL)
		return -ENOMEM;
	len = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
	if (len < 0) {
		free(buf);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while (n > 0 && in[n - 1] == '=') {
		n--;
		len--;
	}
	buf[len] = '\0';
	*out = (char *)buf;
	return 0;
}

static char *base64_encode(const char *in)
{
	size_t n = strlen(in);
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
	return out;
}

/* An auth.json key names a host, perhaps with a scheme, a path (a
 * namespace in podman's files) or docker's v1 suffix. */
static size_t key_match(const char *key, const char *host, const char *repository)
{
	char k[1024];
	size_t n, hl = strlen(host);

	if (strncmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncmp(key, "http://", 7) == 0)
		key += 7;
	snprintf(k, sizeof(k), "%s", key);
	n = strlen(k);
	if (n >= 4 && strcmp(k + n - 4, "/v1/") == 0)
		k[n -= 4] = '\0';
	else if (n >= 4 && strcmp(k + n - 3, "/v2") == 0)
		k[n -= 3] = '\0';
	while (n && k[n - 1] == '/')
		k[--n] = '\0';
	if (strcmp(host, "docker.io") == 0 &&
	    (strcmp(k, "index.docker.io") == 0 || strcmp(k, "registry-1.docker.io") == 0))
		return 1;
	if (strncmp(k, host, hl) != 0)
		return 0;
	if (k[hl] == '\0')
		return 1;
	/* "host/ns/repo": only for that namespace, and it wins over "host". */
	if (k[hl] == '/' && repository && strncmp(k + hl + 1, repository, n - hl - 1) == 0 &&
	    (repository[n - hl - 1] == '\0' || repository[n - hl - 1] == '/'))
		return 1 + n;
	return 0;
}

int registry_find_credentials(const char *authfile, const char *host, const char *repository, char **user,
			      char **password, struct err **e)
{
	_cleanup_free_ char *text = NULL;
	json_object *doc, *auths, *best = NULL;
	size_t len, best_score = 0;
	char *decoded = NULL, *colon;
	int r = read_file(authfile, &text, &len);

	*user = *password = NULL;
	if (r < 0)
		return r == -ENOENT ? -ENOENT : err_set(e, -r, "auth file '%s'", authfile);
	doc = jx_parse(text, len, authfile, e);
	if (doc == NULL)
		return err_wrap(e, "auth file");
	auths = jx_get(doc, "auths");
	if (auths && json_object_is_type(auths, json_type_object)) {
		json_object_object_foreach(auths, key, val)
		{
			size_t score = key_match(key, host, repository);
			if (score > best_score && jx_get(val, "auth")) {
				best = jx_get(val, "auth");
				best_score = score;
			}
		}
	}
	if (best == NULL || !json_object_is_type(best, json_type_string)) {
		json_object_put(doc);
		return -ENOENT;
	}
	r = base64_decode(json_object_get_string(best), &decoded);
	json_object_put(doc);
	if (r < 0 || (colon = strchr(decoded, ':')) == NULL) {
		free(decoded);
		return err_setx(e, EINVAL, "auth file '%s': the entry for %s is not base64 of user:password", authfile,
				host);
	}
	*colon = '\0';
	*user = strdup(decoded);
	*password = strdup(colon + 1);
	free(decoded);
	return (*user && *password) ? 0 : err_set(e, ENOMEM, "auth file");
}

static int load_credentials(struct registry *r, struct err **e)
{
	const char *env;
	char paths[4][4096];
	size_t n = 0;

	if (r->o.creds) {
		const char *colon = strchr(r->o.creds, ':');
		if (colon == NULL)
			return err_setx(e, EINVAL, "--creds: expected USER:PASSWORD");
		r->user = strndup(r->o.creds, (size_t)(colon - r->o.creds));
		r->password = strdup(colon + 1);
		return 0;
	}
	if (r->o.authfile) {
		int rc = registry_find_credentials(r->o.authfile, r->host, r->repository, &r->user, &r->password, e);
		return rc == -ENOENT ? 0 : rc;
	}
	if ((env = getenv("REGISTRY_AUTH_FILE")) && *env)
		snprintf(paths[n++], sizeof(paths[0]), "%s", env);
	if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
		snprintf(paths[n++], sizeof(paths[0]), "%s/containers/auth.json", env);
	else
		snprintf(paths[n++], sizeof(paths[0]), "/run/containers/%u/auth.json", (unsigned)getuid());
	if ((env = getenv("HOME")) && *env)
		snprintf(paths[n++], sizeof(paths[0]), "%s/.config/containers/auth.json", env);
	if ((env = getenv("DOCKER_CONFIG")) && *env)
		snprintf(paths[n++], sizeof(paths[0]), "%s/config.json", env);
	else if ((env = getenv("HOME")) && *env)
		snprintf(paths[n++], sizeof(paths[0]), "%s/.docker/config.json", env);
	for (size_t i = 0; i < n; i++) {
		int rc = registry_find_credentials(paths[i], r->host, r->repository, &r->user, &r->password, e);
		if (rc != -ENOENT)
			return rc;
	}
	return 0;
}

/* --- authentication --- */

int registry_challenge_param(const char *header, const char *param, char *out, size_t size)
{
	size_t pl = strlen(param);
	const char *p = header;

	if (size)
		out[0] = '\0';
	while (*p && !isspace((unsigned char)*p)) /* the scheme */
		p++;
	while (*p) {
		const char *k, *v;
		size_t kl, o = 0;
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		k = p;
		while (*p && *p != '=' && *p != ',')
			p++;
		kl = (size_t)(p - k);
		if (*p != '=')
			continue;
		p++;
		v = p;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				if (kl == pl && strncasecmp(k, param, pl) == 0 && o + 1 < size)
					out[o++] = *p;
				p++;
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',')
				p++;
			if (kl == pl && strncasecmp(k, param, pl) == 0)
				for (const char *q = v; q < p && o + 1 < size; q++)
					out[o++] = *q;
		}
		if (kl == pl && strncasecmp(k, param, pl) == 0) {
			if (size)
				out[o] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}

static char *percent_encode(const char *s)
{
	CURL *c = curl_easy_init();
	char *enc = c ? curl_easy_escape(c, s, 0) : NULL;
	char *out = enc ? strdup(enc) : NULL;

	curl_free(enc);
	if (c)
		curl_easy_cleanup(c);
	return out;
}

static int basic_header(struct registry *r, char **header)
{
	_cleanup_free_ char *pair = NULL, *b64 = NULL;

	if (asprintf(&pair, "%s:%s", r->user, r->password) < 0)
		return -ENOMEM;
	b64 = base64_encode(pair);
	if (b64 == NULL || asprintf(header, "Authorization: Basic %s", b64) < 0)
		return -ENOMEM;
	return 0;
}

static int fetch_token(struct registry *r, const char *challenge, struct err **e)
{
	char realm[1024], service[512], url[4096];
	_cleanup_free_ char *scope = NULL, *svc = NULL, *sc = NULL, *basic = NULL;
	json_object *doc, *tok;
	struct mem m;
	long status = 0;
	int rc;

	if (registry_challenge_param(challenge, "realm", realm, sizeof(realm)) < 0 || !realm[0])
		return err_setx(e, EPROTO, "registry %s: bearer challenge without a realm: %s", r->host, challenge);
	if (strncmp(realm, "https://", 8) != 0 &&
	    !(strncmp(realm, "http://", 7) == 0 && strncmp(r->base, "http://", 7) == 0))
		return err_setx(e, EPROTO, "registry %s: token realm '%s' is not HTTPS", r->host, realm);
	registry_challenge_param(challenge, "service", service, sizeof(service));
	if (asprintf(&scope, "repository:%s:pull", r->repository) < 0 || (sc = percent_encode(scope)) == NULL ||
	    (svc = percent_encode(service)) == NULL)
		return err_set(e, ENOMEM, "registry %s", r->host);
	snprintf(url, sizeof(url), "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?", svc, sc);
	if (r->user && basic_header(r, &basic) < 0)
		return err_set(e, ENOMEM, "registry %s", r->host);
	rc = get(r, url, basic, false, 1024 * 1024, &m, &status, e);
	if (rc < 0)
		return err_wrap(e, "token");
	if (status == 401 || status == 403) {
		mem_free(&m);
		return err_setx(e, EACCES, "registry %s: token service refused %s (HTTP %ld)%s", r->host,
				r->user ? "the credentials" : "anonymous access", status,
				r->user ? "" : "; log in (podman login) or give --creds");
	}
	if (status != 200) {
		mem_free(&m);
		return err_setx(e, EPROTO, "registry %s: token service: HTTP %ld", r->host, status);
	}
	doc = jx_parse(m.data ? m.data : "", m.len, "token response", e);
	mem_free(&m);
	if (doc == NULL)
		return err_wrap(e, "registry %s", r->host);
	tok = jx_get(doc, "token");
	if (tok == NULL)
		tok = jx_get(doc, "access_token");
	if (tok == NULL || !json_object_is_type(tok, json_type_string)) {
		json_object_put(doc);
		return err_setx(e, EPROTO, "registry %s: token response without a token", r->host);
	}
	free(r->auth);
	rc = asprintf(&r->auth, "Authorization: Bearer %s", json_object_get_string(tok));
	json_object_put(doc);
	if (rc < 0) {
		r->auth = NULL;
		return err_set(e, ENOMEM, "registry %s", r->host);
	}
	return 0;
}

/* Answer a 401's challenge; the caller retries the request. */
static int authenticate(struct registry *r, const char *challenge, struct err **e)
{
	if (challenge == NULL)
		return err_setx(e, EACCES, "registry %s: HTTP 401 without a WWW-Authenticate challenge", r->host);
	if (strncasecmp(challenge, "Bearer", 6) == 0)
		return fetch_token(r, challenge, e);
	if (strncasecmp(challenge, "Basic", 5) == 0) {
		if (r->user == NULL)
			return err_setx(
			    e, EACCES,
			    "registry %s: authentication required; log in (podman login) or give --creds or "
			    "--authfile",
			    r->host);
		free(r->auth);
		r->auth = NULL;
		if (basic_header(r, &r->auth) < 0)
			return err_set(e, ENOMEM, "registry %s", r->host);
		return 0;
	}
	return err_setx(e, EACCES, "registry %s: unsupported authentication scheme: %.60s", r->host, challenge);
}

static int load_ca(struct registry *r, struct err **e)
{
	_cleanup_free_ char *sys = NULL, *extra = NULL;
	size_t sl = 0, el = 0;
	int rc;

	if (r->o.tls_ca == NULL)
		return 0;
	if ((rc = read_file(r->o.tls_ca, &extra, &el)) < 0)
		return err_set(e, -rc, "--tls-ca '%s'", r->o.tls_ca);
	if (strstr(extra, "-----BEGIN CERTIFICATE-----") == NULL)
		return err_setx(e, EINVAL, "--tls-ca '%s': no PEM certificate in it", r->o.tls_ca);
	(void)read_file(SYSTEM_CA_BUNDLE, &sys, &sl);
	r->ca_blob = malloc(sl + el + 2);
	if (r->ca_blob == NULL)
		return err_set(e, ENOMEM, "--tls-ca");
	if (sl)
		memcpy(r->ca_blob, sys, sl);
	((char *)r->ca_blob)[sl] = '\n';
	memcpy((char *)r->ca_blob + sl + 1, extra, el);
	r->ca_len = sl + 1 + el;
	return 0;
}

/* GET /v2/ over HTTPS, or plain HTTP where allowed, and answer its
 * challenge so that later requests carry credentials from the start. */
static int ping(struct registry *r, struct err **e)
{
	const char *api = ref_registry_api_host(r->host);
	bool plain_ok = r->o.insecure || ref_registry_is_loopback(r->host);
	char url[1024];
	struct mem m;
	long status = 0;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		free(r->base);
		if (asprintf(&r->base, "%s://%s", attempt == 0 ? "https" : "http", api) < 0) {
			r->base = NULL;
			return err_set(e, ENOMEM, "registry %s", r->host);
		}
		snprintf(url, sizeof(url), "%s/v2/", r->base);
		rc = get(r, url, NULL, false, 64 * 1024, &m, &status, e);
		if (rc == 0)
			break;
		mem_free(&m);
		/* Only a server that does not speak TLS at all is tried in
		 * plain HTTP: a bad certificate is an error, not a hint. */
		if (attempt == 1 || r->last_curl != CURLE_SSL_CONNECT_ERROR)
			return rc;
		if (!plain_ok)
			return err_wrap(e, "plain HTTP only with --insecure or on loopback");
		err_free(e);
	}
	if (status == 401) {
		free(r->challenge);
		r->challenge = m.www_authenticate ? strdup(m.www_authenticate) : NULL;
		mem_free(&m);
		/* A bearer token is scoped to the repository: get it now. */
		return authenticate(r, r->challenge, e);
	}
	mem_free(&m);
	if (status != 200)
		return err_setx(e, EPROTO, "registry %s: %s/v2/: HTTP %ld (not an OCI distribution registry?)", r->host,
				r->base, status);
	return 0;
}

int registry_open(struct registry *r, const char *host, const char *repository, const struct registry_opts *o,
		  struct err **e)
{
	int rc;

	memset(r, 0, sizeof(*r));
	pthread_once(&curl_once, curl_init_once);
	r->o = *o;
	if (r->o.parallel == 0)
		r->o.parallel = 4;
	r->host = strdup(host);
	r->repository = strdup(repository);
	if (r->host == NULL || r->repository == NULL) {
		registry_close(r);
		return err_set(e, ENOMEM, "registry %s", host);
	}
	if ((rc = load_credentials(r, e)) < 0 || (rc = load_ca(r, e)) < 0 || (rc = ping(r, e)) < 0) {
		registry_close(r);
		return rc;
	}
	return 0;
}

void registry_close(struct registry *r)
{
	free(r->host);
	free(r->base);
	free(r->repository);
	free(r->user);
	if (r->password)
		memset(r->password, 0, strlen(r->password));
	free(r->password);
	free(r->auth);
	free(r->challenge);
	free(r->ca_blob);
	memset(r, 0, sizeof(*r));
}

static int http_error(struct registry *r, const char *what, long status, const struct mem *m, struct err **e)
{
	char detail[256] = "";
	json_object *doc = m->data ? json_tokener_parse(m->data) : NULL;
	json_object *errs = jx_get(doc, "errors");

	if (errs && json_object_is_type(errs, json_type_array) && json_object_array_length(errs) > 0) {
		json_object *first = json_object_array_get_idx(errs, 0);
		json_object *code = jx_get(first, "code"), *msg = jx_get(first, "message");
		snprintf(detail, sizeof(detail), ": %s%s%s", code ? json_object_get_string(code) : "",
			 code && msg ? ": " : "", msg ? json_object_get_string(msg) : "");
	}
	json_object_put(doc);
	return err_setx(e,
			status == 404			 ? ENOENT
			: status == 401 || status == 403 ? EACCES
							 : EPROTO,
			"registry %s: %s: HTTP %ld%s", r->host, what, status, detail);
}

int registry_get_manifest(struct registry *r, const char *reference, char **body, size_t *len, char **media_type,
			  char digest[DIGEST_BUF], struct err **e)
{
	char url[2048], what[1024];
	struct mem m;
	long status = 0;
	int rc;

	*body = NULL;
	*media_type = NULL;
	snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", r->base, r->repository, reference);
	snprintf(what, sizeof(what), "manifest %s:%s", r->repository, reference);
	for (int attempt = 0;; attempt++) {
		if ((rc = get(r, url, MANIFEST_ACCEPT, true, MANIFEST_MAX_SIZE, &m, &status, e)) < 0) {
			mem_free(&m);
			return rc;
		}
		if (status == 401 && attempt == 0) {
			rc = authenticate(r, m.www_authenticate, e);
			mem_free(&m);
			if (rc < 0)
				return rc;
			continue;
		}
		break;
	}
	if (status != 200) {
		rc = http_error(r, what, status, &m, e);
		mem_free(&m);
		return rc;
	}
	digest_buffer(m.data ? m.data : "", m.len, digest);
	if (digest_valid(reference) && strcmp(reference, digest) != 0) {
		mem_free(&m);
		return err_setx(e, EIO, "%s: digest mismatch: expected %s, got %s", what, reference, digest);
	}
	if (m.docker_digest && digest_valid(m.docker_digest) && strcmp(m.docker_digest, digest) != 0) {
		rc = err_setx(e, EIO, "%s: digest mismatch: the registry says %s, the content is %s", what,
			      m.docker_digest, digest);
		mem_free(&m);
		return rc;
	}
	if (m.content_type) {
		char *semi = strchr(m.content_type, ';');
		if (semi)
			*semi = '\0';
	}
	*media_type = m.content_type;
	m.content_type = NULL;
	*body = m.data ? m.data : strdup("");
	*len = m.len;
	m.data = NULL;
	mem_free(&m);
	return 0;
}

/* --- blob downloads, several at once --- */

struct transfer {
	struct registry *r;
	const struct descriptor *d;
	struct blob_writer w;
	CURL *c;
	struct curl_slist *headers;
	struct mem hdr; /* headers only (WWW-Authenticate) */
	char errbuf[CURL_ERROR_SIZE];
	int progress_id, retries;
	bool started, writing, active, done, auth_retry;
	long status;
	struct err *err;
	struct progress *p;
};

static size_t blob_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;

	if (!t->started) {
		t->started = true;
		curl_easy_getinfo(t->c, CURLINFO_RESPONSE_CODE, &t->status);
		if (t->status == 200 && t->w.offset > 0) {
			/* The server ignored our range: start over. */
			if (blob_writer_restart(&t->w, &t->err) < 0)
				return 0;
		}
		t->writing = t->status == 200 || t->status == 206;
	}
	if (!t->writing)
		return n; /* an error body: discarded */
	if (blob_writer_write(&t->w, ptr, n, &t->err) < 0)
		return 0;
	progress_update(t->p, t->progress_id, t->w.offset);
	return n;
}

static int transfer_start(struct transfer *t, CURLM *multi, struct err **e)
{
	char url[2048], range[64];
	struct curl_slist *h = NULL;

	if (t->w.fd < 0) {
		int rc = blob_writer_begin(t->w.s, t->d->digest, t->d->size, true, &t->w, e);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			progress_exists(t->p, "pull", t->d->digest, (uint64_t)t->d->size);
			t->done = true;
			return 0;
		}
		if (t->progress_id < 0)
			t->progress_id = progress_add(t->p, "pull", t->d->digest, (uint64_t)t->d->size, t->w.offset);
	}
	if ((uint64_t)t->d->size == t->w.offset && t->d->size > 0) {
		/* All there from an earlier attempt: check and store it. */
		t->done = true;
		if (blob_writer_commit(&t->w, NULL, e) < 0)
			return -EIO;
		progress_done(t->p, t->progress_id, "done");
		return 0;
	}
	snprintf(url, sizeof(url), "%s/v2/%s/blobs/%s", t->r->base, t->r->repository, t->d->digest);
	if (t->w.offset > 0) {
		snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)t->w.offset);
		h = curl_slist_append(NULL, range);
	}
	if (t->r->auth) {
		struct curl_slist *n = curl_slist_append(h, t->r->auth);
		if (n)
			h = n;
	}
	curl_slist_free_all(t->headers);
	t->headers = h;
	mem_free(&t->hdr);
	t->c = new_handle(t->r, url, h);
	if (t->c == NULL)
		return err_set(e, ENOMEM, "blob %s", t->d->digest);
	t->started = t->writing = false;
	t->status = 0;
	t->errbuf[0] = '\0';
	curl_easy_setopt(t->c, CURLOPT_WRITEFUNCTION, blob_write);
	curl_easy_setopt(t->c, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->c, CURLOPT_HEADERFUNCTION, mem_header);
	curl_easy_setopt(t->c, CURLOPT_HEADERDATA, &t->hdr);
	curl_easy_setopt(t->c, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(t->c, CURLOPT_PRIVATE, t);
	if (curl_multi_add_handle(multi, t->c) != CURLM_OK)
		return err_set(e, ENOMEM, "blob %s", t->d->digest);
	t->active = true;
	return 0;
}

/* A transfer ended: store the blob, retry, or fail. */
static int transfer_finish(struct transfer *t, CURLM *multi, CURLcode rc, struct err **e)
{
	long status = 0;

	curl_easy_getinfo(t->c, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(multi, t->c);
	curl_easy_cleanup(t->c);
	t->c = NULL;
	t->active = false;
	if (t->err) { /* our own write failed: size or disk */
		err_setx(e, t->err->code, "%s", t->err->msg);
		err_free(&t->err);
		progress_done(t->p, t->progress_id, "failed");
		blob_writer_abort(&t->w, false);
		return -EIO;
	}
	if (rc == CURLE_OK && status == 401 && !t->auth_retry) {
		t->auth_retry = true;
		if (authenticate(t->r, t->hdr.www_authenticate, e) < 0)
			return -EACCES;
		return transfer_start(t, multi, e);
	}
	if (rc == CURLE_OK && status == 416 && t->w.offset > 0) {
		/* Nothing past what we have: the partial file is whole. */
		status = 206;
	}
	if (rc == CURLE_OK && (status == 200 || status == 206)) {
		t->done = true;
		if (blob_writer_commit(&t->w, NULL, e) < 0) {
			progress_done(t->p, t->progress_id, "failed");
			return -EIO;
		}
		progress_done(t->p, t->progress_id, "done");
		return 0;
	}
	if (rc == CURLE_OK) {
		struct mem none = {0};
		char what[128];
		snprintf(what, sizeof(what), "blob %s", t->d->digest);
		progress_done(t->p, t->progress_id, "failed");
		blob_writer_abort(&t->w, true);
		return http_error(t->r, what, status, &none, e);
	}
	/* A network failure: resume from what we have, a few times. */
	if (++t->retries <= DOWNLOAD_RETRIES) {
		usleep(200000U * (unsigned)t->retries);
		return transfer_start(t, multi, e);
	}
	progress_done(t->p, t->progress_id, "failed");
	blob_writer_abort(&t->w, true);
	return curl_error(e, t->r, t->d->digest, rc, t->errbuf);
}

int registry_fetch_blobs(struct registry *r, struct store *s, const struct descriptor *const *blobs, size_t n,
			 struct progress *p, struct err **e)
{
	struct transfer *ts = calloc(n + 1, sizeof(*ts));
	CURLM *multi = curl_multi_init();
	size_t next = 0, active = 0;
	int rc = 0;

	if (ts == NULL || multi == NULL) {
		free(ts);
		if (multi)
			curl_multi_cleanup(multi);
		return err_set(e, ENOMEM, "registry %s", r->host);
	}
	for (size_t i = 0; i < n; i++) {
		ts[i].r = r;
		ts[i].d = blobs[i];
		ts[i].p = p;
		ts[i].progress_id = -1;
		ts[i].w.fd = ts[i].w.lock_fd = -1;
		ts[i].w.s = s;
	}
	while (rc == 0) {
		int running = 0, msgs;
		CURLMsg *msg;

		while (active < r->o.parallel && next < n && rc == 0) {
			struct transfer *t = &ts[next++];
			rc = transfer_start(t, multi, e);
			if (t->active)
				active++;
		}
		if (rc < 0 || (active == 0 && next == n))
			break;
		if (curl_multi_perform(multi, &running) != CURLM_OK) {
			rc = err_setx(e, EIO, "registry %s: transfer failed", r->host);
			break;
		}
		while ((msg = curl_multi_info_read(multi, &msgs))) {
			struct transfer *t;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
			active--;
			if ((rc = transfer_finish(t, multi, msg->data.result, e)) < 0)
				break;
			if (t->active)
				active++;
		}
		if (rc == 0 && active)
			curl_multi_poll(multi, NULL, 0, 200, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		if (ts[i].c) {
			curl_multi_remove_handle(multi, ts[i].c);
			curl_easy_cleanup(ts[i].c);
		}
		if (ts[i].w.fd >= 0)
			blob_writer_abort(&ts[i].w, true);
		curl_slist_free_all(ts[i].headers);
		mem_free(&ts[i].hdr);
		err_free(&ts[i].err);
	}
	curl_multi_cleanup(multi);
	free(ts);
	return rc;
}
