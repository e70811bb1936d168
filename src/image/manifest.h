/*
 * The OCI image documents (and Docker's schema 2 forms of them), parsed
 * into plain structs: manifests, image indexes, image configs.  Pure
 * functions over a buffer (fuzzed); every error names the document and
 * the field.
 */
#ifndef CASULO_IMAGE_MANIFEST_H
#define CASULO_IMAGE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "image/digest.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

#define ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

/* The most a manifest, index or config may weigh (the distribution spec
 * lets registries refuse manifests over 4 MiB). */
#define MANIFEST_MAX_SIZE (4 * 1024 * 1024)
#define CONFIG_MAX_SIZE (16 * 1024 * 1024)

struct descriptor {
	char *media_type;
	char digest[DIGEST_BUF];
	int64_t size;
	char *os, *arch, *variant; /* platform, in index entries */
	char *ref_name;		   /* annotation org.opencontainers.image.ref.name */
};

enum manifest_kind { MANIFEST_IMAGE, MANIFEST_INDEX };

struct manifest {
	enum manifest_kind kind;
	char *media_type;
	struct descriptor config;  /* image */
	struct descriptor *layers; /* image */
	size_t n_layers;
	struct descriptor *manifests; /* index */
	size_t n_manifests;
};

struct kv {
	char *key, *value;
};

struct history_entry {
	char *created_by;
	bool empty_layer;
};

struct image_config {
	char *os, *arch, *variant;
	char *user;
	char **env;
	size_t n_env;
	char **entrypoint;
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char *working_dir;
	char *stop_signal;
	struct kv *labels;
	size_t n_labels;
	char (*diff_ids)[DIGEST_BUF];
	size_t n_diff_ids;
	struct history_entry *history;
	size_t n_history;
};

/* what names the document in errors ("manifest sha256:ab12..."). */
int manifest_parse(const char *buf, size_t len, const char *what, struct manifest *m, struct err **e);
void manifest_free(struct manifest *m);
/* Is this media type one of the manifest or index types we read? */
bool media_type_is_index(const char *mt);
bool media_type_is_manifest(const char *mt);
bool media_type_is_layer(const char *mt);

/* The entry of an index for os/arch[/variant] (variant NULL: any, the
 * first listed).  Returns its position or -ENOENT with a message listing
 * the platforms the index has. */
int manifest_select_platform(const struct manifest *idx, const char *os, const char *arch, const char *variant,
			     struct err **e);

int image_config_parse(const char *buf, size_t len, const char *what, struct image_config *c, struct err **e);
void image_config_free(struct image_config *c);

void descriptor_free(struct descriptor *d);
int descriptor_copy(struct descriptor *dst, const struct descriptor *src);

/* "linux/amd64[/v8]" into its parts (strings owned by the caller). */
int platform_parse(const char *s, char **os, char **arch, char **variant, struct err **e);
/* This machine's OCI architecture name ("amd64", "arm64"...). */
const char *platform_host_arch(void);

#endif
