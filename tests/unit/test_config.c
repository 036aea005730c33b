/* Daemon configuration (config/config.h): reference defaults, one error per bad variable
 * naming it, cross-variable rules, derived values (endpoints, termination deadline, packet
 * mark, node id and metadata, extra headers), the token file re-read and the JSON dump.
 * Every test passes its own environment array, so the process environment never matters. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "runtime/err.h"
#include "runtime/log.h"

static char err[4096];

static int load(struct zt_config *cfg, char **env)
{
	memset(cfg, 0xA5, sizeof(*cfg)); /* load must not read what was there */
	return zt_config_load(cfg, env, err, sizeof(err));
}

static void load_ok(struct zt_config *cfg, char **env)
{
	int rc = load(cfg, env);

	ck_assert_msg(rc == 0, "load failed: %s", err);
}

static char *empty_env[] = {NULL};

START_TEST(config_defaults_match_the_reference)
{
	struct zt_config c;
	char addr[ZT_ADDR_STRLEN];

	load_ok(&c, empty_env);
	ck_assert(c.xds.enabled);
	ck_assert_str_eq(c.xds.url, "https://localhost:15012");
	ck_assert_str_eq(c.xds.host, "localhost");
	ck_assert_uint_eq(c.xds.port, 15012);
	ck_assert_str_eq(c.ca.url, "https://localhost:15012");
	ck_assert_str_eq(c.xds_root_ca, "./var/run/secrets/istio/root-cert.pem");
	ck_assert_str_eq(c.ca_root_ca, "./var/run/secrets/istio/root-cert.pem");
	ck_assert_str_eq(c.auth_token, "./var/run/secrets/tokens/istio-token");
	ck_assert_ptr_null(c.alt_xds_hostname);
	ck_assert_str_eq(c.cluster_id, "Kubernetes");
	ck_assert_str_eq(c.cluster_domain, "cluster.local");
	ck_assert_str_eq(c.trust_domain, "cluster.local");
	ck_assert_str_eq(c.network, "");
	ck_assert_ptr_null(c.node_name);
	ck_assert_int_eq(c.proxy_mode, ZT_PROXY_SHARED);
	ck_assert_str_eq(c.inpod_uds, "/var/run/ztunnel/ztunnel.sock");
	ck_assert(c.inpod_port_reuse);
	ck_assert(c.packet_mark_set);
	ck_assert_uint_eq(c.packet_mark, 1337);
	ck_assert_uint_eq(c.secret_ttl_ms, 24ull * 3600 * 1000);
	ck_assert(!c.fake_ca);
	ck_assert_int_eq(c.enable_orig_src, ZT_ORIG_SRC_AUTO);
	ck_assert_int_eq(c.pool_max_streams, 100);
	ck_assert_uint_eq(c.pool_unused_release_ms, 5 * 60 * 1000);
	ck_assert_uint_eq(c.h2_stream_window, 4u << 20);
	ck_assert_uint_eq(c.h2_conn_window, 16u << 20);
	ck_assert_uint_eq(c.h2_frame_size, 1u << 20);
	ck_assert_uint_eq(c.keepalive_time_ms, 180000);
	ck_assert_uint_eq(c.keepalive_interval_ms, 180000);
	ck_assert_int_eq(c.keepalive_retries, 9);
	ck_assert(c.keepalive_enabled);
	ck_assert(!c.user_timeout_enabled);
	ck_assert_uint_eq(c.termination_deadline_ms, 5000);
	ck_assert_int_eq(c.log_format, ZT_CONFIG_LOG_PLAIN);
	ck_assert_str_eq(c.log_level, "info");
	zt_addr_format(&c.admin, addr, sizeof(addr));
	ck_assert_str_eq(addr, "127.0.0.1:15000");
	zt_addr_format(&c.readiness, addr, sizeof(addr));
	ck_assert_str_eq(addr, "[::]:15021");
	zt_addr_format(&c.stats, addr, sizeof(addr));
	ck_assert_str_eq(addr, "[::]:15020");
	ck_assert_uint_eq(c.n_xds_headers, 0);
	ck_assert_ptr_null(c.workload_info.ns);
	zt_config_clear(&c);
	ck_assert_ptr_null(c.node_id);
	zt_config_clear(&c); /* a cleared config clears again */
}
END_TEST

START_TEST(config_inside_kubernetes_defaults_to_istiod_service)
{
	char *env[] = {"KUBERNETES_SERVICE_HOST=10.96.0.1", NULL};
	struct zt_config c;

	load_ok(&c, env);
	ck_assert_str_eq(c.xds.url, "https://istiod.istio-system.svc:15012");
	ck_assert_str_eq(c.xds.host, "istiod.istio-system.svc");
	ck_assert_str_eq(c.xds.authority, "istiod.istio-system.svc:15012");
	ck_assert_str_eq(c.ca.url, "https://istiod.istio-system.svc:15012");
	zt_config_clear(&c);
}
END_TEST

/* Each bad setting alone: load fails and the message names the variable. */
static const struct {
	const char *env[3];
	const char *names;
} bad[] = {
        {{"PROXY_MODE=bogus"}, "PROXY_MODE"},
        {{"PACKET_MARK=-1"}, "PACKET_MARK"},
        {{"PACKET_MARK=4294967296"}, "PACKET_MARK"},
        {{"SECRET_TTL=abc"}, "SECRET_TTL"},
        {{"SECRET_TTL=0"}, "SECRET_TTL"},
        {{"FAKE_CA=maybe"}, "FAKE_CA"},
        {{"POOL_MAX_STREAMS_PER_CONNECTION=0"}, "POOL_MAX_STREAMS_PER_CONNECTION"},
        {{"POOL_UNUSED_RELEASE_TIMEOUT=5x"}, "POOL_UNUSED_RELEASE_TIMEOUT"},
        {{"HTTP2_STREAM_WINDOW_SIZE=3GiB"}, "HTTP2_STREAM_WINDOW_SIZE"},
        {{"HTTP2_CONNECTION_WINDOW_SIZE=100"}, "HTTP2_CONNECTION_WINDOW_SIZE"},
        {{"HTTP2_FRAME_SIZE=1KiB"}, "HTTP2_FRAME_SIZE"},
        {{"KEEPALIVE_TIME=x"}, "KEEPALIVE_TIME"},
        {{"KEEPALIVE_INTERVAL=-1s"}, "KEEPALIVE_INTERVAL"},
        {{"KEEPALIVE_RETRIES=0"}, "KEEPALIVE_RETRIES"},
        {{"KEEPALIVE_ENABLED=perhaps"}, "KEEPALIVE_ENABLED"},
        {{"USER_TIMEOUT_ENABLED=2"}, "USER_TIMEOUT_ENABLED"},
        {{"CONNECTION_TERMINATION_DEADLINE=forever"}, "CONNECTION_TERMINATION_DEADLINE"},
        {{"TERMINATION_GRACE_PERIOD_SECONDS=-3"}, "TERMINATION_GRACE_PERIOD_SECONDS"},
        {{"LOG_FORMAT=xml"}, "LOG_FORMAT"},
        {{"ZTUNNEL_LOG_LEVEL=loud"}, "ZTUNNEL_LOG_LEVEL"},
        {{"RUST_LOG=info,proxy=loud"}, "RUST_LOG"},
        {{"ADMIN_ADDR=0.0.0.0:15000"}, "ADMIN_ADDR"},
        {{"ADMIN_ADDR=nonsense"}, "ADMIN_ADDR"},
        {{"READINESS_ADDR=1.2.3.4"}, "READINESS_ADDR"},
        {{"STATS_ADDR=[::1]:99999"}, "STATS_ADDR"},
        {{"XDS_ADDRESS=http://istiod:15010"}, "XDS_ADDRESS"},
        {{"XDS_ADDRESS=istiod:99999"}, "XDS_ADDRESS"},
        {{"CA_ADDRESS=https://istiod:15012/ca"}, "CA_ADDRESS"},
        {{"INSTANCE_IP=1.2.3"}, "INSTANCE_IP"},
        {{"PROXY_WORKLOAD_INFO=ns/name"}, "PROXY_WORKLOAD_INFO"},
        {{"PROXY_WORKLOAD_INFO=ns//sa"}, "PROXY_WORKLOAD_INFO"},
        {{"PROXY_MODE=dedicated"}, "PROXY_WORKLOAD_INFO"},
        {{"ENABLE_ORIG_SRC=yes"}, "ENABLE_ORIG_SRC"},
        {{"INPOD_PORT_REUSE=2"}, "INPOD_PORT_REUSE"},
        {{"IPV6_ENABLED=x"}, "IPV6_ENABLED"},
        {{"XDS_HEADER_A=line\nbreak"}, "XDS_HEADER_A"},
        {{"XDS_HEADER_TE=trailers"}, "XDS_HEADER_TE"},
        {{"CA_HEADER_GRPC-TIMEOUT=1S"}, "CA_HEADER_GRPC-TIMEOUT"},
        {{"XDS_HEADER_=x"}, "XDS_HEADER_"},
        {{"ISTIO_METAJSON_LABELS={bad"}, "ISTIO_METAJSON_LABELS"},
        {{"ISTIO_META_X=\xff\xfe"}, "ISTIO_META_X"},
        {{"LOCAL_XDS_PATH=/etc/local.yaml", "XDS_ADDRESS=https://istiod:15012"}, "LOCAL_XDS_PATH"},
        {{"LOCAL_XDS_PATH=/etc/local.yaml", "LOCAL_XDS=workloads: []"}, "LOCAL_XDS"},
        {{"LOCAL_CA_DIR=/etc/ca", "FAKE_CA=true"}, "LOCAL_CA_DIR"},
        {{"LOCAL_CA_DIR=/etc/ca", "CA_ADDRESS=https://istiod:15012"}, "LOCAL_CA_DIR"},
};

START_TEST(config_each_invalid_value_names_its_variable)
{
	struct zt_config c;
	char *env[3] = {(char *)bad[_i].env[0], (char *)bad[_i].env[1], NULL};

	ck_assert_msg(load(&c, env) == ZT_E_PARSE, "%s accepted", bad[_i].env[0]);
	ck_assert_msg(strstr(err, bad[_i].names) != NULL, "%s: error does not name %s: %s",
	              bad[_i].env[0], bad[_i].names, err);
	/* Nothing is handed out on failure. */
	ck_assert_ptr_null(c.node_id);
	ck_assert_ptr_null(c.xds_address);
	ck_assert_ptr_null(c.node_meta);
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_reports_every_error_in_one_message)
{
	char *env[] = {"PROXY_MODE=bogus", "PACKET_MARK=x", "ADMIN_ADDR=10.0.0.1:15000", NULL};
	struct zt_config c;

	ck_assert_int_eq(load(&c, env), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "PROXY_MODE"));
	ck_assert_ptr_nonnull(strstr(err, "PACKET_MARK"));
	ck_assert_ptr_nonnull(strstr(err, "ADMIN_ADDR"));
	ck_assert_ptr_nonnull(strstr(err, "; "));
	/* A tiny buffer truncates, never overflows. */
	char small[8];
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(zt_config_load(&c, env, small, sizeof(small)), ZT_E_PARSE);
	ck_assert_uint_lt(strlen(small), sizeof(small));
}
END_TEST

START_TEST(config_termination_deadline_is_derived_from_grace_period)
{
	static const struct {
		int64_t grace;
		uint64_t ms;
	} cases[] = {{-1, 5000}, {0, 1000},  {1, 1000},   {2, 1000},
	             {10, 9000}, {11, 6000}, {30, 25000}, {3600, 3595000}};
	struct zt_config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(zt_config_derive_termination_ms(cases[i].grace) == cases[i].ms,
		              "grace %lld", (long long)cases[i].grace);

	char *grace[] = {"TERMINATION_GRACE_PERIOD_SECONDS=30", NULL};
	load_ok(&c, grace);
	ck_assert_uint_eq(c.termination_deadline_ms, 25000);
	zt_config_clear(&c);

	char *short_grace[] = {"TERMINATION_GRACE_PERIOD_SECONDS=3", NULL};
	load_ok(&c, short_grace);
	ck_assert_uint_eq(c.termination_deadline_ms, 2000);
	zt_config_clear(&c);

	char *both[] = {"TERMINATION_GRACE_PERIOD_SECONDS=30", "CONNECTION_TERMINATION_DEADLINE=7s",
	                NULL};
	load_ok(&c, both);
	ck_assert_uint_eq(c.termination_deadline_ms, 7000);
	zt_config_clear(&c);
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(config_token_file_is_read_again_on_every_call)
{
	char path[] = "/tmp/zt-token-XXXXXX", var[64], tok[128];
	struct zt_config c;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(var, sizeof(var), "AUTH_TOKEN=%s", path);
	char *env[] = {var, NULL};
	load_ok(&c, env);
	write_file(path, "  tok-1\n");
	ck_assert_int_eq(zt_config_token(&c, tok, sizeof(tok)), 0);
	ck_assert_str_eq(tok, "tok-1");
	write_file(path, "tok-2");
	ck_assert_int_eq(zt_config_token(&c, tok, sizeof(tok)), 0);
	ck_assert_str_eq(tok, "tok-2");
	/* Too long for the caller's buffer. */
	ck_assert_int_eq(zt_config_token(&c, tok, 4), ZT_E_TOOBIG);
	/* The path shows in the dump; it is not a secret. */
	json_t *j = zt_config_to_json(&c);
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(j, "env"), "AUTH_TOKEN")), path);
	json_decref(j);
	unlink(path);
	ck_assert_int_eq(zt_config_token(&c, tok, sizeof(tok)), -ENOENT);
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_literal_token_is_used_as_is_and_hidden)
{
	char *env[] = {"AUTH_TOKEN=eyJhbGciOi.payload.sig", NULL};
	struct zt_config c;
	char tok[128], *text;
	json_t *j;

	load_ok(&c, env);
	ck_assert_int_eq(zt_config_token(&c, tok, sizeof(tok)), 0);
	ck_assert_str_eq(tok, "eyJhbGciOi.payload.sig");
	j = zt_config_to_json(&c);
	text = json_dumps(j, 0);
	ck_assert_ptr_null(strstr(text, "payload"));
	ck_assert_ptr_nonnull(strstr(text, "<redacted>"));
	free(text);
	json_decref(j);
	zt_config_clear(&c);

	/* The default path missing means no token, not an error. */
	load_ok(&c, empty_env);
	if (access("./var/run/secrets/tokens/istio-token", F_OK) != 0) {
		ck_assert_int_eq(zt_config_token(&c, tok, sizeof(tok)), 0);
		ck_assert_str_eq(tok, "");
	}
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_xds_address_forms)
{
	static const struct {
		const char *in, *url, *host, *authority;
		uint16_t port;
	} ok[] = {
	        {"istiod:15012", "https://istiod:15012", "istiod", "istiod:15012", 15012},
	        {"istiod.istio-system.svc", "https://istiod.istio-system.svc:15012",
	         "istiod.istio-system.svc", "istiod.istio-system.svc:15012", 15012},
	        {"https://10.0.0.1:1234/", "https://10.0.0.1:1234", "10.0.0.1", "10.0.0.1:1234",
	         1234},
	        {"https://[::1]:15012", "https://[::1]:15012", "::1", "[::1]:15012", 15012},
	        {"[fd00::5]", "https://[fd00::5]:15012", "fd00::5", "[fd00::5]:15012", 15012},
	};
	static const char *const refused[] = {
	        "http://istiod:15010", "grpc://istiod", "https://istiod/path", "https://[::1",
	        "https://[nothex]:1",  "https://x:0",   "https://x:65536",     "https://x:",
	        "https://x:12a",       "https://a b",   "https://:15012",      "https://x:-1",
	        "https://[::1]x",
	};
	struct zt_config_endpoint ep;
	char why[128];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(zt_config_endpoint_parse(&ep, ok[i].in, why, sizeof(why)) == 0,
		              "%s: %s", ok[i].in, why);
		ck_assert(ep.enabled);
		ck_assert_str_eq(ep.url, ok[i].url);
		ck_assert_str_eq(ep.host, ok[i].host);
		ck_assert_str_eq(ep.authority, ok[i].authority);
		ck_assert_uint_eq(ep.port, ok[i].port);
		zt_config_endpoint_clear(&ep);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		why[0] = '\0';
		ck_assert_msg(zt_config_endpoint_parse(&ep, refused[i], why, sizeof(why)) < 0,
		              "%s accepted", refused[i]);
		ck_assert_msg(why[0], "%s: no reason", refused[i]);
		ck_assert_ptr_null(ep.host);
	}
	ck_assert_int_eq(zt_config_endpoint_parse(&ep, "", why, sizeof(why)), 0);
	ck_assert(!ep.enabled);

	char *off[] = {"XDS_ADDRESS=", NULL};
	struct zt_config c;
	load_ok(&c, off);
	ck_assert(!c.xds.enabled);
	ck_assert_ptr_null(c.xds.url);
	ck_assert(c.ca.enabled); /* the CA keeps its own default */
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_local_sources_replace_xds_and_ca)
{
	char *local[] = {"LOCAL_XDS_PATH=/etc/ztunnel/local.yaml", "FAKE_CA=true", NULL};
	char *signer[] = {"LOCAL_CA_DIR=/etc/ztunnel/ca", "XDS_ADDRESS=", NULL};
	struct zt_config c;

	load_ok(&c, local);
	ck_assert(!c.xds.enabled);
	ck_assert(!c.ca.enabled);
	ck_assert_str_eq(c.local_xds_path, "/etc/ztunnel/local.yaml");
	zt_config_clear(&c);
	load_ok(&c, signer);
	ck_assert(!c.ca.enabled);
	ck_assert(!c.xds.enabled);
	ck_assert_str_eq(c.local_ca_dir, "/etc/ztunnel/ca");
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_headers_are_collected_lowercased_in_order)
{
	char *env[] = {"XDS_HEADER_X-Tenant=blue", "CA_HEADER_Foo=bar",
	               "XDS_HEADER_other_one=2",   "XDS_HEADER_X-Tenant=ignored",
	               "NOT_XDS_HEADER_A=1",       NULL};
	struct zt_config c;
	json_t *j;
	char *text;

	load_ok(&c, env);
	ck_assert_uint_eq(c.n_xds_headers, 2);
	ck_assert_str_eq(c.xds_headers[0].key, "x-tenant");
	ck_assert_str_eq(c.xds_headers[0].value, "blue");
	ck_assert_str_eq(c.xds_headers[1].key, "other_one");
	ck_assert_str_eq(c.xds_headers[1].value, "2");
	ck_assert_uint_eq(c.n_ca_headers, 1);
	ck_assert_str_eq(c.ca_headers[0].key, "foo");
	ck_assert_str_eq(c.ca_headers[0].value, "bar");
	/* The dump names headers but never shows their values. */
	j = zt_config_to_json(&c);
	text = json_dumps(j, 0);
	ck_assert_ptr_nonnull(strstr(text, "\"xdsHeaders\": [\"x-tenant\", \"other_one\"]"));
	ck_assert_ptr_null(strstr(text, "blue"));
	free(text);
	json_decref(j);
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_too_many_headers_are_refused)
{
	char *env[ZT_CONFIG_MAX_HEADERS + 2], names[ZT_CONFIG_MAX_HEADERS + 1][32];
	struct zt_config c;

	for (int i = 0; i <= ZT_CONFIG_MAX_HEADERS; i++) {
		snprintf(names[i], sizeof(names[i]), "XDS_HEADER_H%d=v", i);
		env[i] = names[i];
	}
	env[ZT_CONFIG_MAX_HEADERS + 1] = NULL;
	ck_assert_int_eq(load(&c, env), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "XDS_HEADER_H16"));
}
END_TEST

START_TEST(config_node_id_and_metadata)
{
	char *env[] = {"INSTANCE_IP=10.1.2.3",
	               "POD_NAME=ztunnel-abc",
	               "POD_NAMESPACE=istio-system",
	               "NODE_NAME=node-1",
	               "ISTIO_META_CLUSTER_ID=east",
	               "ISTIO_META_DNS_CAPTURE=true",
	               "ISTIO_METAJSON_LABELS={\"app\":\"ztunnel\",\"n\":[1,2]}",
	               NULL};
	struct zt_config c;
	json_t *m;

	load_ok(&c, env);
	ck_assert_str_eq(
	        c.node_id,
	        "ztunnel~10.1.2.3~ztunnel-abc.istio-system~istio-system.svc.cluster.local");
	m = c.node_meta;
	ck_assert_str_eq(json_string_value(json_object_get(m, "NAME")), "ztunnel-abc");
	ck_assert_str_eq(json_string_value(json_object_get(m, "NAMESPACE")), "istio-system");
	ck_assert_str_eq(json_string_value(json_object_get(m, "INSTANCE_IPS")), "10.1.2.3");
	ck_assert_str_eq(json_string_value(json_object_get(m, "NODE_NAME")), "node-1");
	ck_assert_str_eq(json_string_value(json_object_get(m, "DNS_CAPTURE")), "true");
	ck_assert_str_eq(json_string_value(json_object_get(m, "CLUSTER_ID")), "east");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "LABELS"), "app")),
	                 "ztunnel");
	ck_assert_int_eq(json_array_size(json_object_get(json_object_get(m, "LABELS"), "n")), 2);
	/* ISTIO_META_CLUSTER_ID is CLUSTER_ID's alias. */
	ck_assert_str_eq(c.cluster_id, "east");
	zt_config_clear(&c);

	load_ok(&c, empty_env);
	ck_assert_str_eq(c.node_id, "ztunnel~1.1.1.1~.~.svc.cluster.local");
	ck_assert_str_eq(json_string_value(json_object_get(c.node_meta, "CLUSTER_ID")),
	                 "Kubernetes");
	ck_assert_ptr_null(json_object_get(c.node_meta, "NAME"));
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_dedicated_mode_splits_workload_info_and_sets_no_mark)
{
	char *env[] = {"PROXY_MODE=dedicated", "PROXY_WORKLOAD_INFO=default/local/sa-1", NULL};
	char *marked[] = {"PROXY_MODE=dedicated", "PROXY_WORKLOAD_INFO=a/b/c", "PACKET_MARK=0",
	                  NULL};
	struct zt_config c;
	json_t *j;

	load_ok(&c, env);
	ck_assert_int_eq(c.proxy_mode, ZT_PROXY_DEDICATED);
	ck_assert_str_eq(c.workload_info.ns, "default");
	ck_assert_str_eq(c.workload_info.name, "local");
	ck_assert_str_eq(c.workload_info.sa, "sa-1");
	ck_assert(!c.packet_mark_set);
	j = zt_config_to_json(&c);
	ck_assert(json_is_null(json_object_get(j, "packetMark")));
	ck_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(j, "proxyWorkloadInfo"), "name")),
	        "local");
	json_decref(j);
	zt_config_clear(&c);
	/* An explicit mark, even 0, is kept. */
	load_ok(&c, marked);
	ck_assert(c.packet_mark_set);
	ck_assert_uint_eq(c.packet_mark, 0);
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_log_level_prefers_ztunnel_log_level_over_rust_log)
{
	char *rust[] = {"RUST_LOG=warn,xds=debug", NULL};
	char *both[] = {"RUST_LOG=warn", "ZTUNNEL_LOG_LEVEL=error", "LOG_FORMAT=json", NULL};
	char spec[256];
	struct zt_config c;

	zt_log_set_spec("info", NULL, 0);
	load_ok(&c, rust);
	ck_assert_str_eq(c.log_level, "warn,xds=debug");
	zt_config_clear(&c);
	load_ok(&c, both);
	ck_assert_str_eq(c.log_level, "error");
	ck_assert_int_eq(c.log_format, ZT_CONFIG_LOG_JSON);
	zt_config_clear(&c);
	/* Loading validates the spec without applying it. */
	zt_log_get_spec(spec, sizeof(spec));
	ck_assert_str_eq(spec, "info");
}
END_TEST

START_TEST(config_ipv6_disabled_moves_default_listeners_to_ipv4)
{
	char *env[] = {"IPV6_ENABLED=false", "STATS_ADDR=:9000", NULL};
	char addr[ZT_ADDR_STRLEN];
	struct zt_config c;

	load_ok(&c, env);
	zt_addr_format(&c.readiness, addr, sizeof(addr));
	ck_assert_str_eq(addr, "0.0.0.0:15021");
	zt_addr_format(&c.stats, addr, sizeof(addr));
	ck_assert_str_eq(addr, "0.0.0.0:9000");
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_first_occurrence_of_a_variable_wins)
{
	char *env[] = {"CLUSTER_ID=first", "CLUSTER_ID=second", "JUNK_WITHOUT_EQUALS", NULL};
	struct zt_config c;

	load_ok(&c, env);
	ck_assert_str_eq(c.cluster_id, "first");
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_help_lists_every_variable_with_defaults)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	zt_config_help(f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "XDS_ADDRESS"));
	ck_assert_ptr_nonnull(strstr(buf, "https://istiod.istio-system.svc:15012"));
	ck_assert_ptr_nonnull(strstr(buf, "SECRET_TTL"));
	ck_assert_ptr_nonnull(strstr(buf, "24h"));
	ck_assert_ptr_nonnull(strstr(buf, "RUST_LOG"));
	ck_assert_ptr_nonnull(strstr(buf, "XDS_HEADER_"));
	ck_assert_ptr_nonnull(strstr(buf, "shared, dedicated"));
	free(buf);
}
END_TEST

START_TEST(config_root_ca_setting_reads_file_pem_or_system)
{
	char path[] = "/tmp/zt-root-XXXXXX", *pem;
	const char *inline_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	size_t len;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	write_file(path, "file contents");
	ck_assert_int_eq(zt_config_read_root_ca(path, &pem, &len), 0);
	ck_assert_str_eq(pem, "file contents");
	ck_assert_uint_eq(len, 13);
	free(pem);
	ck_assert_int_eq(zt_config_read_root_ca(inline_pem, &pem, &len), 0);
	ck_assert_str_eq(pem, inline_pem);
	free(pem);
	ck_assert_int_eq(zt_config_read_root_ca("SYSTEM", &pem, &len), 0);
	ck_assert_ptr_null(pem);
	unlink(path);
	ck_assert_int_eq(zt_config_read_root_ca(path, &pem, &len), -ENOENT);
	ck_assert_int_eq(zt_config_read_root_ca("/tmp", &pem, &len), -EINVAL);
}
END_TEST

START_TEST(config_proxy_config_fills_what_the_environment_leaves_unset)
{
	struct zt_config c;
	char *env[] = {"PROXY_CONFIG=discoveryAddress: istiod.example:15012\n"
	               "proxyAdminPort: 16000\nstatsPort: 16020\nconcurrency: 4\n"
	               "proxyMetadata:\n  ISTIO_META_FOO: bar\n  CLUSTER_ID: c9\n"
	               "  NETWORK: from-meta\n"
	               "tracing: {zipkin: {address: x}}\n",
	               "NETWORK=from-env", NULL};

	load_ok(&c, env);
	ck_assert_str_eq(c.xds.host, "istiod.example");
	ck_assert_str_eq(c.ca.host, "istiod.example");
	ck_assert_uint_eq(c.admin.port, 16000);
	ck_assert_uint_eq(c.stats.port, 16020);
	ck_assert_int_eq(c.worker_threads, 4);
	ck_assert(c.worker_threads_set);
	ck_assert_str_eq(c.cluster_id, "c9");
	ck_assert_str_eq(c.network, "from-env"); /* the real environment wins */
	ck_assert_str_eq(json_string_value(json_object_get(c.node_meta, "FOO")), "bar");
	zt_config_clear(&c);
}
END_TEST

START_TEST(config_proxy_config_from_a_file)
{
	struct zt_config c;
	char path[] = "/tmp/zt-pc-XXXXXX", var[64];
	const char text[] = "statsPort: 17020\n";
	int fd = mkstemp(path);
	char *env[] = {var, NULL};

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	snprintf(var, sizeof(var), "PROXY_CONFIG=%s", path);
	load_ok(&c, env);
	ck_assert_uint_eq(c.stats.port, 17020);
	ck_assert(!c.worker_threads_set);
	ck_assert_int_eq(c.worker_threads, 2);
	zt_config_clear(&c);
	unlink(path);
}
END_TEST

START_TEST(config_malformed_proxy_config_is_named)
{
	struct zt_config c;
	char *bad_yaml[] = {"PROXY_CONFIG=discoveryAddress: [x", NULL};
	char *bad_port[] = {"PROXY_CONFIG=proxyAdminPort: 99999", NULL};
	char *bad_meta[] = {"PROXY_CONFIG=proxyMetadata: [a]", NULL};
	char *no_file[] = {"PROXY_CONFIG=/nonexistent/pc.yaml", NULL};

	ck_assert_int_eq(load(&c, bad_yaml), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "PROXY_CONFIG:"));
	ck_assert_int_eq(load(&c, bad_port), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "proxyAdminPort must be a port"));
	ck_assert_int_eq(load(&c, bad_meta), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "proxyMetadata must be a mapping"));
	ck_assert_int_eq(load(&c, no_file), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "PROXY_CONFIG file /nonexistent/pc.yaml"));
}
END_TEST

START_TEST(config_unsupported_settings_are_named_and_some_refused)
{
	struct zt_config c;
	char names[512];
	bool refuse;
	char *none[] = {"ZTUNNEL_CPU_LIMIT=2", "ZTUNNEL_RESOURCE_CPU_REQUEST=200m",
	                "ZTUNNEL_RESOURCE_CPU_LIMIT=0.5", "ISTIO_META_DNS_CAPTURE=false", NULL};
	char *warn[] = {"XDS_ON_DEMAND=true", "TLS12_ENABLED=true", "ISTIO_META_DNS_CAPTURE=true",
	                NULL};
	char *refused[] = {"CRL_PATH=/var/run/secrets/istio/crl/ca-crl.pem", NULL};
	char *invalid[] = {"ZTUNNEL_CPU_LIMIT=lots", "ZTUNNEL_WORKER_THREADS=0", NULL};

	load_ok(&c, none);
	ck_assert_uint_eq(zt_config_unsupported(&c, names, sizeof(names), &refuse), 0);
	ck_assert(!refuse);
	zt_config_clear(&c);
	load_ok(&c, warn);
	ck_assert_uint_eq(zt_config_unsupported(&c, names, sizeof(names), &refuse), 2);
	ck_assert_str_eq(names, "XDS_ON_DEMAND=true, TLS12_ENABLED=true");
	ck_assert(!refuse);
	zt_config_clear(&c);
	load_ok(&c, refused);
	ck_assert_uint_eq(zt_config_unsupported(&c, names, sizeof(names), &refuse), 1);
	ck_assert_str_eq(names, "CRL_PATH");
	ck_assert(refuse);
	zt_config_clear(&c);
	ck_assert_int_eq(load(&c, invalid), ZT_E_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "ZTUNNEL_CPU_LIMIT=\"lots\""));
	ck_assert_ptr_nonnull(strstr(err, "ZTUNNEL_WORKER_THREADS"));
}
END_TEST

Suite *config_suite(void);
Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *t = tcase_create("load");

	tcase_add_test(t, config_defaults_match_the_reference);
	tcase_add_test(t, config_inside_kubernetes_defaults_to_istiod_service);
	tcase_add_loop_test(t, config_each_invalid_value_names_its_variable, 0,
	                    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(t, config_reports_every_error_in_one_message);
	tcase_add_test(t, config_termination_deadline_is_derived_from_grace_period);
	tcase_add_test(t, config_token_file_is_read_again_on_every_call);
	tcase_add_test(t, config_literal_token_is_used_as_is_and_hidden);
	tcase_add_test(t, config_xds_address_forms);
	tcase_add_test(t, config_local_sources_replace_xds_and_ca);
	tcase_add_test(t, config_headers_are_collected_lowercased_in_order);
	tcase_add_test(t, config_too_many_headers_are_refused);
	tcase_add_test(t, config_node_id_and_metadata);
	tcase_add_test(t, config_dedicated_mode_splits_workload_info_and_sets_no_mark);
	tcase_add_test(t, config_log_level_prefers_ztunnel_log_level_over_rust_log);
	tcase_add_test(t, config_ipv6_disabled_moves_default_listeners_to_ipv4);
	tcase_add_test(t, config_first_occurrence_of_a_variable_wins);
	tcase_add_test(t, config_help_lists_every_variable_with_defaults);
	tcase_add_test(t, config_root_ca_setting_reads_file_pem_or_system);
	tcase_add_test(t, config_proxy_config_fills_what_the_environment_leaves_unset);
	tcase_add_test(t, config_proxy_config_from_a_file);
	tcase_add_test(t, config_malformed_proxy_config_is_named);
	tcase_add_test(t, config_unsupported_settings_are_named_and_some_refused);
	suite_add_tcase(s, t);
	return s;
}
