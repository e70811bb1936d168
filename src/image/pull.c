/* Pull: manifest (an index resolved to one platform), config and layers
 * into the store, each verified; the name is written last, so that a
 * pull killed half-way leaves only blobs (and a resumable partial one). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/progress.h"
#include "image/ref.h"

static int pick_platform(const struct pull_opts *o, char **os, char **arch, char **variant, struct err **e)
{
	if (o->platform)
		return platform_parse(o->platform, os, arch, variant, e);
	*os = strdup("linux");
	*arch = strdup(platform_host_arch());
	*variant = NULL;
	return (*os && *arch) ? 0 : err_set(e, ENOMEM, "platform");
}

int image_pull(struct store *s, const char *refstr, const struct pull_opts *o, char **name_out,
	       struct descriptor *manifest_out, struct err **e)
{
	struct image_ref ref;
	struct registry reg;
	struct manifest m = {0};
	struct descriptor desc = {0};
	char *body = NULL, *mt = NULL, digest[DIGEST_BUF], what[256];
	char *os = NULL, *arch = NULL, *variant = NULL;
	size_t len = 0;
	const struct descriptor **blobs = NULL;
	int r;

	if (name_out)
		*name_out = NULL;
	if ((r = ref_parse(refstr, &ref, e)) < 0)
		return r;
	if ((r = pick_platform(o, &os, &arch, &variant, e)) < 0) {
		ref_free(&ref);
		return r;
	}
	if ((r = registry_open(&reg, ref.registry, ref.repository, &o->registry, e)) < 0)
		goto out_ref;
	r = registry_get_manifest(&reg, ref.digest[0] ? ref.digest : ref.tag, &body, &len, &mt, digest, e);
	if (r < 0)
		goto out;
	snprintf(what, sizeof(what), "manifest %s", digest);
	if ((r = manifest_parse(body, len, what, &m, e)) < 0)
		goto out;
	if (m.kind == MANIFEST_INDEX) {
		int i = manifest_select_platform(&m, os, arch, variant, e);
		char child[DIGEST_BUF];
		if (i < 0) {
			r = i;
			goto out;
		}
		snprintf(child, sizeof(child), "%s", m.manifests[i].digest);
		manifest_free(&m);
		free(body);
		free(mt);
		body = mt = NULL;
		if ((r = registry_get_manifest(&reg, child, &body, &len, &mt, digest, e)) < 0)
			goto out;
		snprintf(what, sizeof(what), "manifest %s", digest);
		if ((r = manifest_parse(body, len, what, &m, e)) < 0)
			goto out;
		if (m.kind != MANIFEST_IMAGE) {
			r = err_setx(e, EINVAL, "%s: an index inside an index", what);
			goto out;
		}
	}
	blobs = calloc(m.n_layers + 1, sizeof(*blobs));
	if (blobs == NULL) {
		r = err_set(e, ENOMEM, "pull");
		goto out;
	}
	blobs[0] = &m.config;
	for (size_t i = 0; i < m.n_layers; i++)
		blobs[i + 1] = &m.layers[i];
	if ((r = registry_fetch_blobs(&reg, s, blobs, m.n_layers + 1, o->progress, e)) < 0)
		goto out;
	/* The config must agree with the manifest before the image is named. */
	{
		struct store_loaded l;
		char mdigest[DIGEST_BUF];
		if ((r = store_put_blob(s, body, len, digest, mdigest, e)) < 0)
			goto out;
		desc.media_type = strdup(m.media_type ? m.media_type : MT_OCI_MANIFEST);
		memcpy(desc.digest, digest, DIGEST_BUF);
		desc.size = (int64_t)len;
		if ((r = store_load(s, &desc, &l, e)) < 0)
			goto out;
		desc.os = l.config.os ? strdup(l.config.os) : NULL;
		desc.arch = l.config.arch ? strdup(l.config.arch) : NULL;
		store_loaded_free(&l);
	}
	if ((r = store_tag(s, ref.name, &desc, e)) < 0)
		goto out;
	progress_note(o->progress, "pulled", "image", ref.name, "digest", digest, NULL);
	if (name_out && (*name_out = strdup(ref.name)) == NULL)
		r = err_set(e, ENOMEM, "pull");
	if (manifest_out && r == 0)
		r = descriptor_copy(manifest_out, &desc) < 0 ? err_set(e, ENOMEM, "pull") : 0;
out:
	registry_close(&reg);
out_ref:
	if (r < 0)
		err_wrap(e, "pull '%s'", refstr);
	free(blobs);
	descriptor_free(&desc);
	manifest_free(&m);
	free(body);
	free(mt);
	free(os);
	free(arch);
	free(variant);
	ref_free(&ref);
	return r;
}
