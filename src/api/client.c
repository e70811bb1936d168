#include "api/client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define API_TIMEOUT_SECONDS 600 /* snapshots of large guests take a while */

struct buffer {
	char *data;
	size_t len;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buffer *b = userdata;
	size_t n = size * nmemb;
	char *nd = realloc(b->data, b->len + n + 1);

	if (nd == NULL)
		return 0;
	memcpy(nd + b->len, ptr, n);
	b->data = nd;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

int api_request(const char *socket_path, const char *method, const char *path, const char *body, int *status,
		char **resp_body, struct err **e)
{
	return api_request_timeout(socket_path, method, path, body, API_TIMEOUT_SECONDS, status, resp_body, e);
}

int api_request_timeout(const char *socket_path, const char *method, const char *path, const char *body, long timeout_s,
			int *status, char **resp_body, struct err **e)
{
	struct buffer b = {calloc(1, 1), 0};
	struct curl_slist *headers = NULL;
	char url[1024];
	long code = 0;
	CURLcode rc;
	CURL *c;

	if (b.data == NULL)
		return err_set(e, ENOMEM, "api socket '%s'", socket_path);
	c = curl_easy_init();
	if (c == NULL) {
		free(b.data);
		return err_setx(e, EIO, "api socket '%s': cannot set up libcurl", socket_path);
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		free(b.data);
		return err_setx(e, EIO, "api socket '%s': %s", socket_path, curl_easy_strerror(rc));
	}
	*status = (int)code;
	*resp_body = b.data;
	return 0;
}
