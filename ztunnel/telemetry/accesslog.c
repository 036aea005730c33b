/* Access log lines. The field list is built in spec §8.2 order on the stack and handed to
 * zt_log_emit once; nothing is formatted when the "access" module's level filters the line. */
#include "telemetry/accesslog.h"

#include <stdio.h>

#include "runtime/log.h"

ZT_LOG_MODULE("access");

#define MAX_FIELDS 20

struct fields {
	struct zt_log_field f[MAX_FIELDS];
	size_t n;
	char src[ZT_ADDR_STRLEN], dst[ZT_ADDR_STRLEN], duration[32];
};

const char *zt_direction_name(enum zt_direction dir)
{
	return dir == ZT_DIR_INBOUND ? "inbound" : "outbound";
}

static void add_str(struct fields *fs, const char *key, const char *v)
{
	if (v && *v)
		fs->f[fs->n++] = ZT_LF_S(key, v);
}

static void add_addr(struct fields *fs, const char *key, const struct zt_sockaddr *a, char *buf)
{
	if (a && a->ip.family && zt_addr_format(a, buf, ZT_ADDR_STRLEN) > 0)
		fs->f[fs->n++] = ZT_LF_S(key, buf);
}

static void identity_fields(struct fields *fs, const struct zt_access_entry *e)
{
	add_addr(fs, "src.addr", &e->src_addr, fs->src);
	add_str(fs, "src.workload", e->src_workload);
	add_str(fs, "src.namespace", e->src_namespace);
	if (e->mtls)
		add_str(fs, "src.identity", e->src_identity);
	add_str(fs, "src.cluster", e->src_cluster);
	add_addr(fs, "dst.addr", &e->dst_addr, fs->dst);
	add_str(fs, "dst.hbone_addr", e->dst_hbone_addr);
	add_str(fs, "dst.service", e->dst_service);
	add_str(fs, "dst.workload", e->dst_workload);
	add_str(fs, "dst.namespace", e->dst_namespace);
	if (e->mtls)
		add_str(fs, "dst.identity", e->dst_identity);
	add_str(fs, "dst.cluster", e->dst_cluster);
	add_str(fs, "direction", zt_direction_name(e->direction));
}

void zt_access_log(const struct zt_access_entry *e)
{
	enum zt_log_level level = e->error ? ZT_LOG_ERROR : ZT_LOG_INFO;
	bool inbound = e->direction == ZT_DIR_INBOUND;
	struct fields fs;

	if (!zt_log_enabled(&zt_log_mod_, level))
		return;
	fs.n = 0;
	identity_fields(&fs, e);
	fs.f[fs.n++] = ZT_LF_U("bytes_sent", inbound ? e->bytes_down : e->bytes_up);
	fs.f[fs.n++] = ZT_LF_U("bytes_recv", inbound ? e->bytes_up : e->bytes_down);
	snprintf(fs.duration, sizeof(fs.duration), "%llums", (unsigned long long)e->duration_ms);
	fs.f[fs.n++] = ZT_LF_S("duration", fs.duration);
	add_str(&fs, "error", e->error);
	zt_log_emit(&zt_log_mod_, level, fs.f, fs.n, "connection complete");
}

void zt_access_log_opened(const struct zt_access_entry *e)
{
	struct fields fs;

	if (!zt_log_enabled(&zt_log_mod_, ZT_LOG_DEBUG))
		return;
	fs.n = 0;
	identity_fields(&fs, e);
	zt_log_emit(&zt_log_mod_, ZT_LOG_DEBUG, fs.f, fs.n, "connection opened");
}

void zt_access_log_failed(const struct zt_sockaddr *src, const struct zt_sockaddr *dst,
                          enum zt_direction dir, const char *error)
{
	struct fields fs;

	if (!zt_log_enabled(&zt_log_mod_, ZT_LOG_WARN))
		return;
	fs.n = 0;
	add_addr(&fs, "src.addr", src, fs.src);
	add_addr(&fs, "dst.addr", dst, fs.dst);
	add_str(&fs, "direction", zt_direction_name(dir));
	add_str(&fs, "error", error);
	zt_log_emit(&zt_log_mod_, ZT_LOG_WARN, fs.f, fs.n, "connection failed");
}
