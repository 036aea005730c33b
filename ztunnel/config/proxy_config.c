/* ProxyConfig YAML to environment entries (proxy_config.h). Bounded: at most
 * ZT_PROXY_CONFIG_MAX_ENV entries, names and values checked before they are copied. */
#include "config/proxy_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/mem.h"
#include "runtime/yaml.h"

static int add(struct zt_proxy_config_env *out, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *s;

	if (out->n >= ZT_PROXY_CONFIG_MAX_ENV)
		return ZT_E_TOOBIG;
	s = xmalloc(n);
	snprintf(s, n, "%s=%s", name, value);
	out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	out->v[out->n++] = s;
	return 0;
}

static bool env_name_ok(const char *s)
{
	if (!*s || strlen(s) > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int port_field(const char *what, const struct zt_yaml *pc, const char *key, int64_t *port,
                      char *err, size_t errlen)
{
	const struct zt_yaml *n = zt_yaml_get(pc, key);
	int rc;

	*port = 0;
	if (!n || zt_yaml_is_null(n))
		return 0;
	if ((rc = zt_yaml_int(n, 1, 65535, port)) < 0)
		snprintf(err, errlen, "%s:%u:%u: %s must be a port (1-65535)", what, n->line,
		         n->col, key);
	return rc;
}

static int from_tree(const char *what, const struct zt_yaml *pc, struct zt_proxy_config_env *out,
                     char *err, size_t errlen)
{
	const struct zt_yaml *n, *meta;
	int64_t admin, stats, conc = 0;
	char buf[64];
	int rc;

	if (!pc || zt_yaml_is_null(pc))
		return 0;
	if (pc->type != ZT_YAML_MAP) {
		snprintf(err, errlen, "%s:%u:%u: expected a ProxyConfig mapping, got a %s", what,
		         pc->line, pc->col, zt_yaml_type_name(pc));
		return ZT_E_PARSE;
	}
	meta = zt_yaml_get(pc, "proxyMetadata");
	if (meta && !zt_yaml_is_null(meta)) {
		if (meta->type != ZT_YAML_MAP) {
			snprintf(err, errlen, "%s:%u:%u: proxyMetadata must be a mapping", what,
			         meta->line, meta->col);
			return ZT_E_PARSE;
		}
		for (size_t i = 0; i < meta->n; i++) {
			const struct zt_yaml *k = zt_yaml_key(meta, i), *v = zt_yaml_val(meta, i);
			const char *ks = zt_yaml_str(k), *vs = zt_yaml_str(v);
			if (!ks || !env_name_ok(ks)) {
				snprintf(err, errlen,
				         "%s:%u:%u: proxyMetadata key \"%.64s\" is not a "
				         "variable name",
				         what, k->line, k->col, ks ? ks : "");
				return ZT_E_PARSE;
			}
			if (v->type != ZT_YAML_SCALAR) {
				snprintf(err, errlen, "%s:%u:%u: proxyMetadata.%s must be a string",
				         what, v->line, v->col, ks);
				return ZT_E_PARSE;
			}
			if ((rc = add(out, ks, vs ? vs : "")) < 0)
				goto toobig;
		}
	}
	n = zt_yaml_get(pc, "discoveryAddress");
	if (n && !zt_yaml_is_null(n)) {
		const char *s = zt_yaml_str(n);
		if (!s || strlen(s) > 512) {
			snprintf(err, errlen, "%s:%u:%u: discoveryAddress must be host:port", what,
			         n->line, n->col);
			return ZT_E_PARSE;
		}
		if ((rc = add(out, "XDS_ADDRESS", s)) < 0 || (rc = add(out, "CA_ADDRESS", s)) < 0)
			goto toobig;
	}
	if ((rc = port_field(what, pc, "proxyAdminPort", &admin, err, errlen)) < 0 ||
	    (rc = port_field(what, pc, "statsPort", &stats, err, errlen)) < 0)
		return rc;
	if (admin) {
		snprintf(buf, sizeof(buf), "127.0.0.1:%lld", (long long)admin);
		if ((rc = add(out, "ADMIN_ADDR", buf)) < 0)
			goto toobig;
	}
	if (stats) {
		snprintf(buf, sizeof(buf), ":%lld", (long long)stats);
		if ((rc = add(out, "STATS_ADDR", buf)) < 0)
			goto toobig;
	}
	n = zt_yaml_get(pc, "concurrency");
	if (n && !zt_yaml_is_null(n)) {
		if ((rc = zt_yaml_int(n, 0, 1024, &conc)) < 0) {
			snprintf(err, errlen, "%s:%u:%u: concurrency must be an integer 0-1024",
			         what, n->line, n->col);
			return rc;
		}
		/* 0 means "as many as the CPUs" in Istio: left to the default here. */
		if (conc > 0) {
			snprintf(buf, sizeof(buf), "%lld", (long long)conc);
			if ((rc = add(out, "ZTUNNEL_WORKER_THREADS", buf)) < 0)
				goto toobig;
		}
	}
	return 0;
toobig:
	snprintf(err, errlen, "%s: more than %d settings", what, ZT_PROXY_CONFIG_MAX_ENV);
	return rc;
}

static int parse(const char *what, const char *text, size_t len, bool mesh,
                 struct zt_proxy_config_env *out, char *err, size_t errlen)
{
	struct zt_yaml_docs docs;
	const struct zt_yaml *root;
	int rc;

	if ((rc = zt_yaml_parse(what, text, len, &docs, err, errlen)) < 0)
		return rc;
	if (docs.n > 1) {
		snprintf(err, errlen, "%s: expected one YAML document, got %zu", what, docs.n);
		zt_yaml_docs_clear(&docs);
		return ZT_E_PARSE;
	}
	root = docs.n ? docs.docs[0] : NULL;
	if (mesh && root && !zt_yaml_is_null(root)) {
		if (root->type != ZT_YAML_MAP) {
			snprintf(err, errlen, "%s:%u:%u: expected a MeshConfig mapping", what,
			         root->line, root->col);
			zt_yaml_docs_clear(&docs);
			return ZT_E_PARSE;
		}
		root = zt_yaml_get(root, "defaultConfig");
	}
	rc = from_tree(what, root, out, err, errlen);
	zt_yaml_docs_clear(&docs);
	return rc;
}

int zt_proxy_config_parse(const char *what, const char *text, size_t len,
                          struct zt_proxy_config_env *out, char *err, size_t errlen)
{
	return parse(what, text, len, false, out, err, errlen);
}

int zt_proxy_config_parse_mesh(const char *what, const char *text, size_t len,
                               struct zt_proxy_config_env *out, char *err, size_t errlen)
{
	return parse(what, text, len, true, out, err, errlen);
}

void zt_proxy_config_env_clear(struct zt_proxy_config_env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}
