#!/usr/bin/python3
"""The DaemonSet manifests of deploy/ against the ztunnel binary (spec §16, §9.1).

  manifest.py check [--ztunnel BIN] FILE...
      Every env variable the ztunnel container sets is one `ztunnel --help` lists; the readiness
      probe, the prometheus port, the ZDS socket, token and root CA paths are the ones the binary
      uses (its defaults, or the value the manifest sets); `ztunnel ARGS --check-config` accepts
      the arguments and environment. Prints one line per problem, exit 1 if any.
  manifest.py podman-args FILE --node N --pod-ip IP --host-root DIR --token FILE
                          --configmap NAME=DIR... [--pod-name NAME]
      The ztunnel container of the DaemonSet as `podman run` options, one per line: env with
      the downward API resolved for that node, capabilities, user, read-only root, and each
      volume mounted from its node-side source. Only what the manifest says; the caller adds
      the runtime, network and name.
  manifest.py probe FILE
      "PORT PATH" of the readiness probe and "PORT" of the prometheus annotation, one a line.

Uses Debian's python3-yaml (scripts/deps.sh).
"""
import argparse
import math
import os
import re
import subprocess
import sys

import yaml

CONTAINER = "istio-proxy"
WORKDIR = "/"  # the image's WORKDIR (scripts/image.sh): relative defaults resolve against it
ROOT_CA_KEY = "root-cert.pem"  # the key istiod writes into the istio-ca-root-cert ConfigMap
ROOT_CA_CONFIGMAP = "istio-ca-root-cert"
TOKEN_AUDIENCE = "istio-ca"
READY_PATH = "/healthz/ready"
CAPS_NEEDED = ("NET_ADMIN", "SYS_ADMIN", "NET_RAW")


class Problem(Exception):
    pass


def load(path):
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
    except (OSError, yaml.YAMLError) as e:
        raise Problem(f"{path}: cannot read: {e}".replace("\n", " "))
    ds = [d for d in docs if d.get("kind") == "DaemonSet"]
    if len(ds) != 1:
        raise Problem(f"{path}: expected one DaemonSet, found {len(ds)}")
    ds = ds[0]
    pod = ds.get("spec", {}).get("template", {}).get("spec", {})
    cs = [c for c in pod.get("containers", []) if c.get("name") == CONTAINER]
    if not cs:
        raise Problem(f"{path}: the DaemonSet has no container named {CONTAINER}")
    return docs, ds, pod, cs[0]


def ztunnel_help(binary):
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=20)
    except OSError as e:
        raise Problem(f"cannot run {binary}: {e.strerror}: run make first")
    if out.returncode != 0:
        raise Problem(f"{binary} --help failed (exit {out.returncode})")
    return out.stdout


def known_vars(help_text):
    """Names, aliases and NAME_<x> prefixes listed by ztunnel --help; table defaults."""
    names, prefixes, defaults = set(), [], {}
    for line in help_text.splitlines():
        m = re.match(r"^\s*([A-Z][A-Z0-9_]*?)(_?<[a-z]+>)?(=|\s|$)", line)
        if m and m.group(1) != "NAME":
            if m.group(2):
                prefixes.append(m.group(1) + ("_" if m.group(2).startswith("_") else ""))
            else:
                names.add(m.group(1))
        t = re.match(r"^([A-Z][A-Z0-9_]+)\s+(\S+)", line)
        if t and t.group(1) != "NAME":
            defaults[t.group(1)] = t.group(2)
        names.update(re.findall(r"\(alias ([A-Z][A-Z0-9_]*)\)", line))
    return names, prefixes, defaults


def literal_env(container):
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def effective(name, env, defaults):
    v = env.get(name, defaults.get(name))
    return None if v in (None, "-") else v


def abspath(p):
    return os.path.normpath(os.path.join(WORKDIR, p))


def port_of(addr):
    m = re.search(r":(\d+)$", addr or "")
    return int(m.group(1)) if m else None


def mounts_by_path(pod, container):
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    out = {}
    for m in container.get("volumeMounts", []):
        out[os.path.normpath(m["mountPath"])] = vols.get(m["name"], {"name": m["name"]})
    return out


def resolve_env(e, ctx, container):
    """The value the kubelet would give env entry e on the node described by ctx."""
    if "value" in e:
        return str(e["value"])
    src = e.get("valueFrom", {})
    if "fieldRef" in src:
        path = src["fieldRef"].get("fieldPath")
        if path not in ctx["fields"]:
            raise Problem(f"env {e['name']}: fieldRef {path} is not one a node provides")
        return ctx["fields"][path]
    if "resourceFieldRef" in src:
        ref = src["resourceFieldRef"]
        kind, _, res = ref.get("resource", "").partition(".")
        if res != "cpu" or kind not in ("limits", "requests"):
            raise Problem(f"env {e['name']}: resourceFieldRef {ref.get('resource')} not supported")
        q = container.get("resources", {}).get(kind, {}).get("cpu")
        # No limit: the node's allocatable CPUs, as the kubelet does.
        cpus = cpu_quantity(q) if q is not None else float(ctx["cpus"])
        return str(max(1, math.ceil(cpus / cpu_quantity(ref.get("divisor", "1")))))
    raise Problem(f"env {e['name']}: no value and no valueFrom the lab can resolve")


def cpu_quantity(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def check(paths, binary):
    help_text = ztunnel_help(binary)
    names, prefixes, defaults = known_vars(help_text)
    problems = []
    for path in paths:
        try:
            docs, ds, pod, c = load(path)
        except Problem as p:
            problems.append(str(p))
            continue

        def bad(msg):
            problems.append(f"{path}: {msg}")

        sa = [d for d in docs if d.get("kind") == "ServiceAccount"]
        if not any(d["metadata"]["name"] == pod.get("serviceAccountName") for d in sa):
            bad(f"no ServiceAccount {pod.get('serviceAccountName')} for the DaemonSet")
        env_names = [e.get("name", "") for e in c.get("env", [])]
        for n in env_names:
            if n not in names and not any(n.startswith(p) and len(n) > len(p) for p in prefixes):
                bad(f"env {n} is not a variable ztunnel knows: fix or remove it "
                    f"(`ztunnel --help` lists every variable)")
        env = literal_env(c)

        probe = c.get("readinessProbe", {}).get("httpGet", {})
        ready_port = port_of(effective("READINESS_ADDR", env, defaults))
        if probe.get("port") != ready_port or probe.get("path") != READY_PATH:
            bad(f"readinessProbe is {probe.get('port')}{probe.get('path')}, ztunnel serves "
                f"readiness on {ready_port}{READY_PATH}")
        stats_port = port_of(effective("STATS_ADDR", env, defaults))
        ann = ds["spec"]["template"].get("metadata", {}).get("annotations", {})
        if str(ann.get("prometheus.io/port")) != str(stats_port) or ann.get("prometheus.io/scrape") != "true":
            bad(f"prometheus annotations name port {ann.get('prometheus.io/port')}, ztunnel serves "
                f"metrics on {stats_port} (and prometheus.io/scrape must be \"true\")")
        cports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        if cports.get("ztunnel-stats") != stats_port:
            bad(f"containerPort ztunnel-stats is {cports.get('ztunnel-stats')}, ztunnel serves "
                f"metrics on {stats_port}")

        mounts = mounts_by_path(pod, c)
        uds = effective("INPOD_UDS", env, defaults)
        vol = mounts.get(os.path.dirname(abspath(uds)))
        if not vol or "hostPath" not in vol:
            bad(f"ZDS socket {uds}: its directory {os.path.dirname(abspath(uds))} is not a "
                f"hostPath mount (the node agent creates the socket on the host)")
        roots = {}  # path -> the variables naming it, so one mount problem is one line
        for var in ("XDS_ROOT_CA", "CA_ROOT_CA"):
            v = effective(var, env, defaults)
            if v is not None and v != "SYSTEM" and not v.startswith("-----BEGIN"):
                roots.setdefault(v, []).append(var)
        for v, var in roots.items():
            var = " and ".join(var)
            p = abspath(v)
            vol = mounts.get(os.path.dirname(p))
            ok = vol and (vol.get("configMap", {}).get("name") == ROOT_CA_CONFIGMAP and
                          os.path.basename(p) == ROOT_CA_KEY or "projected" in vol and any(
                              s.get("clusterTrustBundle", {}).get("path") == os.path.basename(p)
                              for s in vol["projected"].get("sources", [])))
            if not ok:
                bad(f"{var} {v}: {os.path.dirname(p)} must mount ConfigMap {ROOT_CA_CONFIGMAP} "
                    f"(key {ROOT_CA_KEY}) or a clusterTrustBundle with that path")
        tok = effective("AUTH_TOKEN", env, defaults)
        if tok and "/" in tok:
            p = abspath(tok)
            vol = mounts.get(os.path.dirname(p), {})
            srcs = [s.get("serviceAccountToken") for s in vol.get("projected", {}).get("sources", [])]
            if not any(s and s.get("path") == os.path.basename(p) and s.get("audience") == TOKEN_AUDIENCE
                       for s in srcs):
                bad(f"AUTH_TOKEN {tok}: {os.path.dirname(p)} must mount a projected "
                    f"serviceAccountToken with path {os.path.basename(p)} and audience {TOKEN_AUDIENCE}")
        caps = c.get("securityContext", {}).get("capabilities", {}).get("add", [])
        missing = [x for x in CAPS_NEEDED if x not in caps]
        if missing:
            bad(f"capabilities lack {', '.join(missing)}, which in-pod mode needs")

        # The binary itself: arguments and environment (downward API filled with samples).
        ctx = {"cpus": 2, "fields": {"metadata.name": "ztunnel-check",
                                     "metadata.namespace": ds["metadata"].get("namespace", "istio-system"),
                                     "spec.nodeName": "node-check", "status.podIP": "10.0.0.1",
                                     "spec.serviceAccountName": pod.get("serviceAccountName", "ztunnel")}}
        try:
            run_env = {e["name"]: resolve_env(e, ctx, c) for e in c.get("env", [])}
        except Problem as p:
            bad(str(p))
            continue
        cmd = [binary] + [str(a) for a in c.get("args", [])] + ["--check-config"]
        r = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            why = (r.stderr.strip().splitlines() or ["no message"])[0]
            bad(f"ztunnel {' '.join(map(str, c.get('args', [])))} rejects the container: {why}")
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"manifests OK: {', '.join(paths)}")
    return 1 if problems else 0


def podman_args(a):
    _, ds, pod, c = load(a.file)
    configmaps = dict(x.split("=", 1) for x in a.configmap)
    ctx = {"cpus": os.cpu_count() or 1,
           "fields": {"metadata.name": a.pod_name or f"ztunnel-{a.node}",
                      "metadata.namespace": ds["metadata"].get("namespace", "istio-system"),
                      "spec.nodeName": a.node, "status.podIP": a.pod_ip,
                      "spec.serviceAccountName": pod.get("serviceAccountName", "default")}}
    out = []
    for e in c.get("env", []):
        out.append(f"--env={e['name']}={resolve_env(e, ctx, c)}")
    sc = c.get("securityContext", {})
    for cap in sc.get("capabilities", {}).get("drop", []):
        out.append(f"--cap-drop={cap.lower()}")
    for cap in sc.get("capabilities", {}).get("add", []):
        out.append(f"--cap-add={cap.lower()}")
    if sc.get("privileged"):
        out.append("--privileged")
    if "runAsUser" in sc:
        out.append(f"--user={sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}")
    if sc.get("readOnlyRootFilesystem"):
        out.append("--read-only")
    if sc.get("allowPrivilegeEscalation") is False:
        out.append("--security-opt=no-new-privileges")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        v, dst = vols.get(m["name"]), m["mountPath"]
        ro = ":ro" if m.get("readOnly") else ""
        if v is None:
            raise Problem(f"{a.file}: volumeMount {m['name']} has no volume")
        if "configMap" in v:
            name = v["configMap"]["name"]
            if name not in configmaps:
                if v["configMap"].get("optional"):
                    continue
                raise Problem(f"{a.file}: ConfigMap {name} has no source (--configmap {name}=DIR)")
            out.append(f"--volume={configmaps[name]}:{dst}:ro")
        elif "projected" in v:
            for s in v["projected"].get("sources", []):
                t = s.get("serviceAccountToken")
                if not t:
                    raise Problem(f"{a.file}: projected volume {m['name']}: only serviceAccountToken is supported")
                out.append(f"--volume={a.token}:{os.path.join(dst, t['path'])}:ro")
        elif "hostPath" in v:
            src = os.path.join(a.host_root, v["hostPath"]["path"].lstrip("/"))
            os.makedirs(src, exist_ok=True)  # DirectoryOrCreate
            out.append(f"--volume={src}:{dst}{ro}")
        elif "emptyDir" in v:
            out.append(f"--tmpfs={dst}")
        else:
            raise Problem(f"{a.file}: volume {m['name']}: kind not supported")
    print("\n".join(out))
    return 0


def probe(path):
    _, ds, _, c = load(path)
    g = c.get("readinessProbe", {}).get("httpGet", {})
    print(f"{g.get('port')} {g.get('path')}")
    print(ds["spec"]["template"].get("metadata", {}).get("annotations", {}).get("prometheus.io/port"))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--ztunnel", default=os.path.join(os.environ.get("BUILD_DIR", "build"), "bin", "ztunnel"))
    c.add_argument("files", nargs="+")
    p = sub.add_parser("podman-args")
    p.add_argument("file")
    p.add_argument("--node", required=True)
    p.add_argument("--pod-ip", required=True)
    p.add_argument("--pod-name")
    p.add_argument("--host-root", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--configmap", action="append", default=[])
    a = sub.add_parser("args")
    a.add_argument("file")
    r = sub.add_parser("probe")
    r.add_argument("file")
    args = ap.parse_args()
    try:
        if args.cmd == "check":
            return check(args.files, args.ztunnel)
        if args.cmd == "podman-args":
            return podman_args(args)
        if args.cmd == "args":
            print("\n".join(str(x) for x in load(args.file)[3].get("args", [])))
            return 0
        return probe(args.file)
    except Problem as e:
        print(f"manifest: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
