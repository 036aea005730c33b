/* Writes the binary seed corpora of the fuzz targets (usage: mkseeds MESH.yaml OUTDIR):
 * every Address and Authorization fake-istiod builds from MESH.yaml (as it would serve them),
 * ZDS requests of each kind, and CA requests (own identity, impersonated, with a lifetime).
 * Run by hand when the schemas change; its output is committed under tests/fuzz/corpus/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake-istiod/ca_service.h"
#include "fake-istiod/convert.h"
#include "fake-istiod/mesh.h"
#include "istio/ca/ca.pb-c.h"
#include "istio/zds/zds.pb-c.h"
#include "protocol/ca.h"
#include "protocol/csr.h"
#include "protocol/pb.h"
#include "protocol/spiffe.h"

static const char *outdir;

static void put(const char *target, const char *name, const void *p, size_t len, const void *pre,
                size_t prelen)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	if (!(f = fopen(path, "wb")) || fwrite(pre, 1, prelen, f) != prelen ||
	    fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "mkseeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void put_msg(const char *target, const char *name, const ProtobufCMessage *m,
                    const void *pre, size_t prelen)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (zt_pb_pack(m, &buf, &len) < 0)
		exit(1);
	put(target, name, buf, len, pre, prelen);
	free(buf);
}

static void zds_seeds(void)
{
	Istio__Workload__Zds__WorkloadRequest req = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__INIT;
	Istio__Workload__Zds__AddWorkload add = ISTIO__WORKLOAD__ZDS__ADD_WORKLOAD__INIT;
	Istio__Workload__Zds__WorkloadInfo wi = ISTIO__WORKLOAD__ZDS__WORKLOAD_INFO__INIT;
	Istio__Workload__Zds__KeepWorkload keep = ISTIO__WORKLOAD__ZDS__KEEP_WORKLOAD__INIT;
	Istio__Workload__Zds__DelWorkload del = ISTIO__WORKLOAD__ZDS__DEL_WORKLOAD__INIT;
	Istio__Workload__Zds__SnapshotSent snap = ISTIO__WORKLOAD__ZDS__SNAPSHOT_SENT__INIT;

	wi.name = "sleep-1";
	wi.namespace_ = "demo";
	wi.service_account = "sleep";
	add.uid = "4c2b1f7e-0d3a-4e55-9a61-0b2f3c4d5e6f";
	add.workload_info = &wi;
	req.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_ADD;
	req.add = &add;
	put_msg("zds", "add", &req.base, "", 0);
	keep.uid = add.uid;
	req.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_KEEP;
	req.keep = &keep;
	put_msg("zds", "keep", &req.base, "", 0);
	del.uid = add.uid;
	req.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_DEL;
	req.del = &del;
	put_msg("zds", "del", &req.base, "", 0);
	req.payload_case = ISTIO__WORKLOAD__ZDS__WORKLOAD_REQUEST__PAYLOAD_SNAPSHOT_SENT;
	req.snapshot_sent = &snap;
	put_msg("zds", "snapshot", &req.base, "", 0);
}

static void ca_seed(const char *name, char caller, const char *id, int64_t validity,
                    const char *impersonate)
{
	Istio__V1__Auth__IstioCertificateRequest req =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry entry = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	Google__Protobuf__Struct__FieldsEntry *entries[] = {&entry};
	Google__Protobuf__Value value = GOOGLE__PROTOBUF__VALUE__INIT;
	struct zt_spiffe sid;
	struct zt_csr csr = {0};
	char pre[2] = {caller, '\n'};

	if (zt_spiffe_parse(&sid, id, strlen(id)) < 0 || zt_csr_generate(&csr, &sid) < 0)
		exit(1);
	req.csr = csr.csr_pem;
	req.validity_duration = validity;
	if (impersonate) {
		value.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		value.string_value = (char *)impersonate;
		entry.key = FI_CA_IMPERSONATE_KEY;
		entry.value = &value;
		md.n_fields = 1;
		md.fields = entries;
		req.metadata = &md;
	}
	put_msg("ca_request", name, &req.base, pre, sizeof(pre));
	zt_csr_clear(&csr);
}

/* A key and the chain a CA signed for its CSR (key PEM, NUL, IstioCertificateResponse); with
 * extra, an intermediate-looking copy of the leaf and a second root in the bundle. */
static void ca_response_seed(struct zt_ca *ca, const char *name, const char *id, bool extra,
                             bool wrong_key)
{
	Istio__V1__Auth__IstioCertificateResponse resp =
	        ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;
	struct zt_spiffe sid;
	struct zt_csr csr = {0}, other = {0};
	char **chain = NULL, *items[6], err[256], *bundle = NULL;
	size_t n = 0, k = 0;

	if (zt_spiffe_parse(&sid, id, strlen(id)) < 0 || zt_csr_generate(&csr, &sid) < 0 ||
	    zt_csr_generate(&other, &sid) < 0 ||
	    zt_ca_sign_csr(ca, csr.csr_pem, csr.csr_len, "cluster.local", NULL, 3600, &chain, &n,
	                   NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkseeds: %s\n", err);
		exit(1);
	}
	for (size_t i = 0; i < n && k < 4; i++)
		items[k++] = chain[i];
	if (extra) {
		size_t l = strlen(chain[n - 1]);
		bundle = malloc(2 * l + 1);
		memcpy(bundle, chain[n - 1], l);
		memcpy(bundle + l, chain[n - 1], l + 1);
		items[k - 1] = bundle;
	}
	resp.cert_chain = items;
	resp.n_cert_chain = k;
	char *key;
	size_t key_len;
	if (zt_csr_key_pem(wrong_key ? &other : &csr, &key, &key_len) < 0)
		abort();
	put_msg("ca_response", name, &resp.base, key, key_len + 1);
	zt_csr_key_pem_free(key, key_len);
	free(bundle);
	zt_ca_chain_free(chain, n);
	zt_csr_clear(&csr);
	zt_csr_clear(&other);
}

static void ca_response_seeds(void)
{
	char dir[] = "/tmp/mkseeds-ca.XXXXXX", err[256], path[600];
	struct zt_ca *ca = NULL;

	if (!mkdtemp(dir) || zt_ca_open(&ca, dir, true, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkseeds: CA: %s\n", err);
		exit(1);
	}
	ca_response_seed(ca, "leaf-root", "spiffe://cluster.local/ns/demo/sa/sleep", false, false);
	ca_response_seed(ca, "two-roots", "spiffe://cluster.local/ns/default/sa/web", true, false);
	ca_response_seed(ca, "wrong-key", "spiffe://cluster.local/ns/demo/sa/sleep", false, true);
	zt_ca_free(ca);
	for (const char *f = "root-cert.pem\0root-key.pem\0"; *f; f += strlen(f) + 1) {
		snprintf(path, sizeof(path), "%s/%s", dir, f);
		remove(path);
	}
	rmdir(dir);
}

int main(int argc, char **argv)
{
	struct fi_mesh m = {0};
	struct fi_resources r = {0};
	const char *files[1];
	char err[512], name[64];

	if (argc != 3) {
		fprintf(stderr, "usage: mkseeds MESH.yaml OUTDIR\n");
		return 2;
	}
	files[0] = argv[1];
	outdir = argv[2];
	if (fi_mesh_load(&m, files, 1, NULL, err, sizeof(err)) < 0 ||
	    fi_convert(&m, NULL, &r, err, sizeof(err)) < 0) {
		fprintf(stderr, "mkseeds: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < r.n_addresses; i++) {
		snprintf(name, sizeof(name), "address-%02zu", i);
		put("xds_address", name, r.addresses[i].data, r.addresses[i].len, "", 0);
	}
	for (size_t i = 0; i < r.n_authorizations; i++) {
		snprintf(name, sizeof(name), "authorization-%02zu", i);
		put("xds_authorization", name, r.authorizations[i].data, r.authorizations[i].len,
		    "", 0);
	}
	for (size_t i = 0; i < r.n_waypoints; i++) {
		snprintf(name, sizeof(name), "waypoint-%02zu", i);
		put("waypoint_authz", name, r.waypoints[i].data, r.waypoints[i].len, "", 0);
	}
	fi_resources_clear(&r);
	fi_mesh_clear(&m);
	zds_seeds();
	ca_response_seeds();
	ca_seed("own-identity", 1, "spiffe://cluster.local/ns/demo/sa/sleep", 0, NULL);
	ca_seed("impersonated", 0, "spiffe://cluster.local/ns/demo/sa/sleep", 3600,
	        "spiffe://cluster.local/ns/demo/sa/sleep");
	ca_seed("impersonated-other-node", 0, "spiffe://cluster.local/ns/demo/sa/httpbin", 1,
	        "spiffe://cluster.local/ns/demo/sa/httpbin");
	ca_seed("workload-impersonates", 1, "spiffe://cluster.local/ns/demo/sa/sleep", 86400,
	        "spiffe://cluster.local/ns/demo/sa/sleep");
	return 0;
}
