/* SPDX-License-Identifier: MIT */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "daemon/stats_socket.h"

/* A JSON string: names are the user's, so escape them. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static uint64_t rd(atomic_uint_least64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

struct write_arg {
	FILE *f;
	unsigned int n;			/* exports written so far */
};

/* One export's object in the "exports" array; a registry_for_each() callback. */
static int write_export(struct export *ex, void *arg)
{
	struct write_arg *wa = arg;
	FILE *f = wa->f;
	struct export_stats *st = &ex->stats;
	uint64_t lat[STATS_LAT_BUCKETS];
	unsigned int i;
	int reserve = ex->bs.bio_pool.min_nr - mempool_reserve_count(&ex->bs.bio_pool);

	for (i = 0; i < STATS_LAT_BUCKETS; i++)
		lat[i] = rd(&st->lat[i]);
	fprintf(f, "%s{\"name\":", wa->n++ ? "," : "");
	json_str(f, ex->name);
	fprintf(f, ",\"description\":");
	json_str(f, ex->description);
	fprintf(f, ",\"size\":%llu,\"readonly\":%s,\"connections\":%u,\"in_flight\":%d,\"errors\":%llu,\"ops\":{",
		(unsigned long long)ex->be->size, ex->be->readonly ? "true" : "false",
		atomic_load(&st->connections),
		atomic_load_explicit(&st->in_flight, memory_order_relaxed),
		(unsigned long long)rd(&st->errors));
	for (i = 0; i < STATS_NR_OPS; i++)
		fprintf(f, "%s\"%s\":{\"ops\":%llu,\"bytes\":%llu}", i ? "," : "",
			stats_op_names[i], (unsigned long long)rd(&st->ops[i]),
			(unsigned long long)rd(&st->bytes[i]));
	fprintf(f, "},\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu},",
		(unsigned long long)stats_percentile(lat, 50),
		(unsigned long long)stats_percentile(lat, 90),
		(unsigned long long)stats_percentile(lat, 99),
		(unsigned long long)stats_percentile(lat, 99.9));
	fprintf(f, "\"bio_reserve\":{\"size\":%d,\"in_use\":%d}}",
		ex->bs.bio_pool.min_nr, reserve < 0 ? 0 : reserve);
	return 0;
}

void stats_socket_serve(int fd, const struct stats_source *src)
{
	struct timeval tv = { .tv_sec = 1 };
	struct pgalloc_stats ps;
	char *buf = NULL;
	size_t len = 0, off = 0;
	struct write_arg wa = { 0 };
	FILE *f;

	/* A reader that does not read must not hold up the main loop for long. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	f = open_memstream(&buf, &len);
	if (!f)
		goto out;
	pgalloc_get_stats(src->pages, &ps);
	fprintf(f, "{\"version\":\"%s\",\"pid\":%ld,\"uptime_s\":%lld,", PACKAGE_VERSION,
		(long)getpid(), (long long)(time(NULL) - src->started));
	fprintf(f, "\"pool\":{\"page_size\":4096,\"pages_total\":%zu,\"pages_free\":%zu,"
		"\"locked\":%s,\"allocs\":%llu,\"frees\":%llu,\"failures\":%llu,\"waits\":%llu},",
		ps.total_pages, ps.free_pages, ps.locked ? "true" : "false",
		(unsigned long long)ps.allocs, (unsigned long long)ps.frees,
		(unsigned long long)ps.failures, (unsigned long long)ps.waits);
	fprintf(f, "\"exports\":[");
	wa.f = f;
	registry_for_each(src->reg, write_export, &wa);
	fprintf(f, "]}\n");
	if (fclose(f))
		goto out;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
out:
	free(buf);
	close(fd);
}
