/* GET /metrics: Prometheus' text exposition format 0.0.4, from the
 * sampler's last figures (nothing here waits on an instance). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/internal.h"

struct text {
	char *buf;
	size_t len;
	FILE *f;
};

struct family {
	const char *name, *type, *help;
};

static const struct family families[] = {
    {"casulo_instance_up", "gauge", "1 while the instance runs (or is paused), else 0"},
    {"casulo_instance_cpu_seconds_total", "counter", "CPU time of the VMM process or the container's cgroup"},
    {"casulo_instance_memory_bytes", "gauge",
     "resident memory of the VMM process, working set of the container's cgroup"},
    {"casulo_instance_disk_read_bytes_total", "counter",
     "bytes read from disks (virtio-blk, or the cgroup's block I/O)"},
    {"casulo_instance_disk_write_bytes_total", "counter", "bytes written to disks"},
    {"casulo_instance_network_receive_bytes_total", "counter",
     "bytes received (virtio-net, or the container's interfaces)"},
    {"casulo_instance_network_transmit_bytes_total", "counter", "bytes sent"},
};

char *metrics_text(struct daemon *d)
{
	struct instance **list;
	size_t n, len = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return strdup("");
	list = instances_snapshot(d, &n);
	for (size_t fam = 0; fam < sizeof(families) / sizeof(families[0]); fam++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", families[fam].name, families[fam].help, families[fam].name,
			families[fam].type);
		for (size_t i = 0; i < n; i++) {
			struct instance *inst = list[i];
			struct usage u;
			bool up;
			double v;
			pthread_mutex_lock(&d->lock);
			u = inst->usage;
			up = inst->shim_pidfd >= 0;
			pthread_mutex_unlock(&d->lock);
			if (fam > 0 && (!up || !u.valid))
				continue;
			switch (fam) {
			case 0:
				v = up;
				break;
			case 1:
				v = (double)u.cpu_ns / 1e9;
				break;
			case 2:
				v = (double)u.memory_bytes;
				break;
			case 3:
				v = (double)u.disk_read_bytes;
				break;
			case 4:
				v = (double)u.disk_write_bytes;
				break;
			case 5:
				v = (double)u.net_rx_bytes;
				break;
			default:
				v = (double)u.net_tx_bytes;
				break;
			}
			if (fam >= 3 && !u.has_io)
				continue;
			/* Names are [a-z0-9-]: nothing to escape in a label. */
			fprintf(f, "%s{name=\"%s\",type=\"%s\"} %.17g\n", families[fam].name, inst->name,
				instance_type_name(inst->type), v);
		}
	}
	fprintf(f,
		"# HELP casulod_instances instances defined\n# TYPE casulod_instances gauge\ncasulod_instances %zu\n",
		n);
	fprintf(f,
		"# HELP casulod_operations_running operations at work\n# TYPE casulod_operations_running gauge\n"
		"casulod_operations_running %d\n",
		ops_running(d));
	fprintf(f,
		"# HELP casulod_http_requests_total API requests received\n# TYPE casulod_http_requests_total counter\n"
		"casulod_http_requests_total %llu\n",
		(unsigned long long)atomic_load(&d->http_requests));
	instances_put(list, n);
	fclose(f);
	return buf;
}
