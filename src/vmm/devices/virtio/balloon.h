/* virtio-balloon: --balloon [target=SIZE][,deflate-on-oom=on][,free-page-reporting=on][,stats=SECONDS] */
#ifndef CASULO_VMM_DEVICES_VIRTIO_BALLOON_H
#define CASULO_VMM_DEVICES_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/devices/device.h"
#include "vmm/config.h"

struct vm;
struct virtio_dev;

/* The statistics tags a Linux guest reports (VIRTIO_BALLOON_S_*, 0-15). */
#define BALLOON_STATS_MAX 16

struct balloon_info {
	uint64_t target;   /* bytes asked for */
	uint64_t actual;   /* bytes the guest says it has given */
	uint64_t released; /* bytes handed back to the host so far (inflate and free page reports) */
	bool stats_valid;  /* the guest has reported statistics */
	double stats_age;  /* seconds since it last did */
	uint64_t stats[BALLOON_STATS_MAX];
	uint32_t stats_present; /* bit per tag the guest sent */
};

int virtio_balloon_create(struct vm *vm, const struct balloon_config *c, struct virtio_dev **ret,
			  struct err **e) MUST_CHECK;
/* The VM's balloon, or NULL when it has none. */
struct virtio_dev *virtio_balloon_find(struct vm *vm);
/* Any thread: ask the guest to hold target bytes in the balloon (rounded
 * down to 4 KiB pages; at most guest memory). */
int virtio_balloon_set_target(struct virtio_dev *vd, uint64_t target, struct err **e) MUST_CHECK;
/* Any thread: what the balloon looks like now; also asks the guest for
 * fresh statistics (they arrive shortly after). */
void virtio_balloon_query(struct virtio_dev *vd, struct balloon_info *info);
/* The statistic's name in messages ("free-memory"), or NULL for an unknown tag. */
const char *virtio_balloon_stat_name(unsigned tag);

/* Its instances from the configuration (machine.c's virtio table). */
extern const struct device_type virtio_balloon_type;

#endif
