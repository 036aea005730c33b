#!/usr/bin/env python3
"""The control plane at scale, on loopback (no root): fake-istiod serving a generated mesh and
K ztunnels (in-pod mode, one per simulated node, each with its own sim-cni holding no pods and
its own admin ports). Reports initial sync per ztunnel, push fan-out latency per churn step,
bytes per change, CPU and RSS, memory per workload/pod above idle, and whether every
ztunnel's /config_dump converged to `fake-istiod check` of the same files (exit 1 if not).
Run through bench/controlplane.sh; every process started here is stopped on the way out."""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")), "bin")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TARGETS = {
    "sync_100k_s": 1.0,
    "fanout_p99_ms": 100,
    "istiod_kib_per_pod": 2.0,
    "ztunnel_kib_per_workload": 1.0,
    "authz_ns": 1000,
}


class Fail(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid):
    """(cpu seconds, rss KiB, hwm KiB, rchar, wchar) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    io = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            io[k] = int(v)
    return cpu, rss, hwm, io["rchar"], io["wchar"]


def log_ts(line):
    """Seconds since the epoch of a log line's leading RFC 3339 timestamp, or None."""
    ts = line.split("\t", 1)[0]
    try:
        d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def istiod_loads(path, offset=0):
    """fake-istiod's own (parse, convert) seconds of each load logged after offset."""
    out = []
    with open(path) as f:
        f.seek(offset)
        for line in f:
            m = re.search(r"loaded \d+ pods .* in ([0-9.]+) s, converted in ([0-9.]+) s", line)
            if m:
                out.append((float(m.group(1)), float(m.group(2))))
    return out


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Lab:
    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, name, argv, env=None):
        out = open(os.path.join(self.work, name + ".out"), "w")
        err = open(os.path.join(self.work, name + ".err"), "w")
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=e, cwd=self.work,
                             stdin=subprocess.DEVNULL)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)

    def path(self, name):
        return os.path.join(self.work, name)

    def tail(self, name, n=15):
        try:
            with open(self.path(name)) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def wait_for(deadline_s, fn, what):
    end = time.time() + deadline_s
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise Fail(f"timed out after {deadline_s:.0f} s waiting for {what}")


def http_get(port, path, timeout=60):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read()


def generate(outdir, a, churn):
    os.makedirs(outdir, exist_ok=True)
    argv = [os.path.join(BIN, "fake-istiod"), "generate", "--nodes", str(a.nodes),
            "--namespaces", str(a.namespaces), "--pods", str(a.pods_n),
            "--pods-per-service", str(a.pods_per_service),
            "--policies-per-namespace", str(a.policies), "--churn", str(churn),
            "--out", outdir, "--split", str(a.split or max(250, a.pods_n // 400))]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode:
        raise Fail(f"generate: {r.stderr.strip()}")
    return [os.path.basename(x) for x in r.stdout.split()]


class Istiod:
    def __init__(self, lab, files, meshdir):
        self.lab, self.port = lab, free_port()
        self.meshdir = meshdir
        argv = [os.path.join(BIN, "fake-istiod"), "serve", "--ca-dir", lab.path("ca"),
                "--listen", f"127.0.0.1:{self.port}", "--cert-ttl", "1h"]
        for f in files:
            argv += ["--config", os.path.join(meshdir, f)]
        t0 = time.time()
        self.p = lab.start("istiod", argv)
        wait_for(1800, lambda: self.exited() or "listening" in open(lab.path("istiod.out")).read(),
                 "fake-istiod to listen")
        self.load_s = time.time() - t0

    def exited(self):
        if self.p.poll() is not None:
            raise Fail(f"fake-istiod exited {self.p.returncode}: {self.lab.tail('istiod.err')}")
        return False


class Ztunnel:
    def __init__(self, lab, i, istiod):
        self.lab, self.i, self.node = lab, i, f"node-{i}"
        self.admin, self.ready, self.stats = free_port(), free_port(), free_port()
        tok = lab.path(f"token-{i}")
        with open(tok, "w") as f:
            subprocess.run([os.path.join(BIN, "fake-istiod"), "token", "--ca-dir",
                            lab.path("ca"), "--node", self.node, "--namespace", "istio-system",
                            "--service-account", "ztunnel"], stdout=f, check=True)
        sock = lab.path(f"zds-{i}.sock")
        self.cni = lab.start(f"cni-{i}", [os.path.join(BIN, "sim-cni"), "serve", "--socket", sock])
        wait_for(20, lambda: "listening" in open(lab.path(f"cni-{i}.out")).read(), "sim-cni")
        ca = lab.path("ca/root-cert.pem")
        env = {"XDS_ADDRESS": f"https://127.0.0.1:{istiod.port}",
               "CA_ADDRESS": f"https://127.0.0.1:{istiod.port}", "XDS_ROOT_CA": ca,
               "CA_ROOT_CA": ca, "AUTH_TOKEN": tok, "NODE_NAME": self.node,
               "POD_NAME": f"ztunnel-{self.node}", "POD_NAMESPACE": "istio-system",
               "SERVICE_ACCOUNT": "ztunnel", "ADMIN_ADDR": f"127.0.0.1:{self.admin}",
               "READINESS_ADDR": f"127.0.0.1:{self.ready}",
               "STATS_ADDR": f"127.0.0.1:{self.stats}", "INPOD_UDS": sock,
               "RUST_LOG": "info,xds=debug"}
        self.name = f"zt-{i}"
        self.t_start = time.time()
        self.p = lab.start(self.name, [os.path.join(BIN, "ztunnel")], env)

    def is_ready(self):
        if self.p.poll() is not None:
            raise Fail(f"ztunnel {self.i} exited {self.p.returncode}: {self.lab.tail(self.name + '.err')}")
        try:
            return http_get(self.ready, "/healthz/ready", 5)[0] == 200
        except OSError:
            return False

    def log_lines(self, offset=0):
        with open(self.lab.path(self.name + ".err")) as f:
            f.seek(offset)
            return f.readlines()

    def log_size(self):
        return os.path.getsize(self.lab.path(self.name + ".err"))

    def sync_times(self):
        """(process start -> synced, xDS connected -> synced) in seconds."""
        conn = synced = None
        for line in self.log_lines():
            if "xds: connected to" in line and conn is None:
                conn = log_ts(line)
            if "xds: synced" in line:
                synced = log_ts(line)
                break
        if synced is None:
            raise Fail(f"ztunnel {self.i} logged no sync")
        return synced - self.t_start, synced - (conn or self.t_start)

    def full_sync(self, n_addresses, n_policies):
        """Seconds from xDS connected to the response that completed the initial state (the
        server may split it over several responses; ztunnel says "synced" after the first)."""
        conn, cum, done = None, {"Address": 0, "Authorization": 0}, {}
        for line in self.log_lines():
            if "xds: connected to" in line and conn is None:
                conn = log_ts(line)
            if " response: " not in line:
                continue
            kind = "Address" if "istio.workload.Address" in line else "Authorization"
            cum[kind] += int(line.split(" response: ", 1)[1].split()[0])
            if kind not in done and cum[kind] >= (n_addresses if kind == "Address" else n_policies):
                done[kind] = log_ts(line)
            if len(done) == 2:
                return max(done.values()) - conn
        raise Fail(f"ztunnel {self.i}: the initial state never completed in its log")

    def dump(self):
        """(section, object) for the state in /config_dump, read from the response line by line."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/config_dump", timeout=600) as r:
            yield from resources(r, ("workloads", "services", "policies"), f"ztunnel {self.i} /config_dump")


# ---- convergence: the content of /config_dump against fake-istiod check --------------------
# Both documents put each top-level key on a line at two spaces and each resource of an array
# on a line of its own, so they are read line by line and only the projections compared here
# are kept (a million-pod document is never held whole).

_SECTION = re.compile(r'^  ("(?:[^"\\]|\\.)*"): \[(\],?)?$')


def resources(lines, keys, what):
    """Yields (key, object) for each resource of the top-level arrays named in keys; fails unless
    every one of keys was seen and the document ended."""
    section, seen, ended = None, set(), False
    for raw in lines:
        line = (raw.decode() if isinstance(raw, bytes) else raw).rstrip("\n")
        if ended:
            if line.strip():
                raise Fail(f"{what}: text after the end of the document")
            continue
        if section is not None:
            if line in ("  ]", "  ],"):
                section = None
                continue
            try:
                yield section, json.loads(line.rstrip(","))
            except ValueError as e:
                raise Fail(f"{what}: not one {section} resource per line ({e}): {line[:200]}")
            continue
        if line == "}":
            ended = True
            continue
        m = _SECTION.match(line)
        if m:
            key = json.loads(m.group(1))
            if key in keys:
                seen.add(key)
                if not m.group(2):
                    section = key
    if section is not None or not ended:
        raise Fail(f"{what}: the document was cut short")
    missing = [k for k in keys if k not in seen]
    if missing:
        raise Fail(f"{what}: no {', '.join(missing)} array at the top level")

def _matches(clause_matches, lower):
    out = []
    for m in clause_matches:
        e = {}
        for k, v in m.items():
            if isinstance(v, list):
                vals = []
                for x in v:
                    if isinstance(x, dict):
                        vals.append(json.dumps({kk.lower(): vv for kk, vv in x.items()}, sort_keys=True))
                    else:
                        vals.append(json.dumps(x))
                e[k] = sorted(vals)
            elif v not in (False, None, [], {}):
                e[k] = v
        if e:
            out.append(json.dumps(e, sort_keys=True))
    return sorted(out)


def want_state(check):
    """The projection of `fake-istiod check` output, given as (key, resource) pairs."""
    w, s, p = {}, {}, {}
    for key, a in check:
        if key == "authorizations":
            x = a["resource"]
            p[a["name"]] = json.dumps([[_matches(c.get("matches", []), True) for c in r.get("clauses", [])]
                                       for r in x.get("rules", [])])
            continue
        if key != "addresses":
            continue
        r = a["resource"]
        if "workload" in r:
            x = r["workload"]
            svcs = {k: sorted((pp["servicePort"], pp.get("targetPort", 0)) for pp in v.get("ports", []))
                    for k, v in x.get("services", {}).items()}
            w[x["uid"]] = (x.get("serviceAccount"), x.get("node"), x.get("canonicalRevision"),
                           tuple(sorted(x.get("addresses", []))),
                           tuple(sorted(x.get("authorizationPolicies", []))), json.dumps(svcs, sort_keys=True))
        elif "service" in r:
            x = r["service"]
            s[f"{x['namespace']}/{x['hostname']}"] = (
                tuple(sorted(v["address"] for v in x.get("addresses", []))),
                tuple(sorted((pp["servicePort"], pp.get("targetPort", 0)) for pp in x.get("ports", []))))
    return w, s, p


def got_state(dump):
    """The projection of a /config_dump, given as (key, object) pairs."""
    w, s, p = {}, {}, {}
    for key, x in dump:
        if key == "workloads":
            svcs = {k: sorted((int(sp), tp) for sp, tp in v.items()) for k, v in x.get("services", {}).items()}
            w[x["uid"]] = (x.get("serviceAccount"), x.get("node"), x.get("canonicalRevision"),
                           tuple(sorted(x.get("workloadIps", []))),
                           tuple(sorted(x.get("authorizationPolicies", []))), json.dumps(svcs, sort_keys=True))
        elif key == "services":
            s[f"{x['namespace']}/{x['hostname']}"] = (
                tuple(sorted(v.split("/", 1)[-1] for v in x.get("vips", []))),
                tuple(sorted((int(k), v.get("targetPort", 0)) for k, v in x.get("ports", {}).items())))
        elif key == "policies":
            p[f"{x['namespace']}/{x['name']}"] = json.dumps([[_matches(c, True) for c in r]
                                                             for r in x.get("rules", [])])
    return w, s, p


def diff(want, got):
    """First difference between two (workloads, services, policies) states, or None."""
    for kind, a, b in zip(("workload", "service", "policy"), want, got):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return f"{kind} {k}: want {a.get(k)} got {b.get(k)}"
    return None


def check_state(meshdir, files):
    argv = [os.path.join(BIN, "fake-istiod"), "check", "--format", "json"]
    for f in files:
        argv += ["--config", os.path.join(meshdir, f)]
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        failure = None
        try:
            want = want_state(resources(p.stdout, ("addresses", "authorizations"), "fake-istiod check"))
        except Fail as e:
            failure = e
        p.stdout.close()
        rc = p.wait()
        err.seek(0)
        why = err.read().decode().strip()
    if failure:
        raise Fail(f"{failure}{f' ({why})' if why else ''}")
    if rc:
        raise Fail(f"fake-istiod check: {why}")
    return want


def converge(zts, want, deadline_s):
    """Polls every ztunnel's dump until it matches want; returns the list of differences."""
    end, left = time.time() + deadline_s, list(zts)
    last = {}
    while left and time.time() < end:
        for z in list(left):
            d = diff(want, got_state(z.dump()))
            if d is None:
                left.remove(z)
            else:
                last[z.i] = d
        if left:
            time.sleep(0.2)
    return [f"ztunnel {z.i}: {last.get(z.i)}" for z in left]


# ---- the run -------------------------------------------------------------------------------

def idle_baseline(a, work):
    """RSS of fake-istiod serving, and of a ztunnel synced to, a mesh without pods."""
    lab = Lab(os.path.join(work, "idle"))
    os.makedirs(lab.work)
    try:
        class A:
            pass
        b = A()
        b.__dict__.update(vars(a))
        b.pods_n, b.policies = 0, 0
        files = generate(lab.path("mesh"), b, 0)
        ist = Istiod(lab, files, lab.path("mesh"))
        z = Ztunnel(lab, 0, ist)
        wait_for(120, z.is_ready, "idle ztunnel ready")
        return proc_stats(ist.p.pid)[1], proc_stats(z.p.pid)[1]
    finally:
        lab.stop_all()


def apply_churn(a, meshdir, step, tmp):
    """Writes the mesh after churn step `step`, replacing only files that changed (rename,
    so fake-istiod sees whole files). Returns the time just before the first rename."""
    files = generate(tmp, a, step)
    changed = []
    for f in files:
        new, old = os.path.join(tmp, f), os.path.join(meshdir, f)
        if not os.path.exists(old) or open(new, "rb").read() != open(old, "rb").read():
            changed.append(f)
    t0 = time.time()
    for f in changed:
        os.replace(os.path.join(tmp, f), os.path.join(meshdir, f))
    return t0, changed, files


def run(a):
    work = tempfile.mkdtemp(prefix="cpbench.")
    res = {"shape": {"pods": a.pods_n, "ztunnels": a.ztunnels, "nodes": a.nodes,
                     "namespaces": a.namespaces, "pods_per_service": a.pods_per_service,
                     "policies_per_namespace": a.policies, "churn_steps": a.churn},
           "load": os.getloadavg(), "cpus": os.cpu_count()}
    lab = Lab(work)
    try:
        if not a.no_idle:
            res["idle_rss_kib"] = dict(zip(("istiod", "ztunnel"), idle_baseline(a, work)))
        meshdir = lab.path("mesh")
        files = generate(meshdir, a, 0)
        res["yaml_bytes"] = sum(os.path.getsize(os.path.join(meshdir, f)) for f in files)
        ist = Istiod(lab, files, meshdir)
        res["istiod_load_s"] = ist.load_s
        res["istiod_parse_convert_s"] = (istiod_loads(lab.path("istiod.err")) or [None])[0]
        st = proc_stats(ist.p.pid)
        res["istiod_after_load"] = {"cpu_s": st[0], "rss_kib": st[1]}
        zts = [Ztunnel(lab, i, ist) for i in range(a.ztunnels)]
        wait_for(1800, lambda: all(z.is_ready() for z in zts), "every ztunnel ready")
        syncs = [z.sync_times() for z in zts]
        res["sync_s"] = [round(s[1], 4) for s in syncs]
        res["sync_from_start_s"] = [round(s[0], 4) for s in syncs]
        want = check_state(meshdir, files)
        res["workloads"], res["services"], res["policies"] = (len(x) for x in want)
        bad = converge(zts, want, 600)
        res["initial_converged"] = not bad
        if bad:
            raise Fail("initial state differs: " + "; ".join(bad[:3]))
        res["full_sync_s"] = [round(z.full_sync(len(want[0]) + len(want[1]), len(want[2])), 4)
                              for z in zts]
        time.sleep(0.5)
        st = proc_stats(ist.p.pid)
        res["istiod_after_sync"] = {"cpu_s": st[0], "rss_kib": st[1]}
        # fake-istiod's share of the initial sync: its CPU while every ztunnel synced.
        res["istiod_sync_cpu_s"] = round(st[0] - res["istiod_after_load"]["cpu_s"], 3)
        stats0 = {z.i: proc_stats(z.p.pid) for z in zts}
        res["ztunnel_after_sync"] = [{"cpu_s": stats0[z.i][0], "rss_kib": stats0[z.i][1]} for z in zts]

        # Churn: each step adds, removes and relabels a pod and changes a policy.
        steps = []
        tmp = lab.path("next")
        for step in range(1, a.churn + 1):
            shutil.rmtree(tmp, ignore_errors=True)
            offs = {z.i: z.log_size() for z in zts}
            ist_err0 = os.path.getsize(lab.path("istiod.err"))
            io0 = proc_stats(ist.p.pid)
            zio0 = {z.i: proc_stats(z.p.pid) for z in zts}
            t0, changed, files = apply_churn(a, meshdir, step, tmp)

            def got_all():
                out = {}
                for z in zts:
                    ts = [log_ts(l) for l in z.log_lines(offs[z.i]) if " response: " in l]
                    if len(ts) < 2:  # Address and Authorization
                        return None
                    out[z.i] = max(ts[:2])
                return out
            arrived = wait_for(600, got_all, f"churn step {step} at every ztunnel")
            reloaded = None
            with open(lab.path("istiod.err")) as f:
                f.seek(ist_err0)
                for line in f:
                    if "reloaded after" in line:
                        reloaded = log_ts(line)
            if reloaded is None:
                raise Fail(f"churn step {step}: fake-istiod did not reload: {lab.tail('istiod.err')}")
            time.sleep(0.3)
            io1 = proc_stats(ist.p.pid)
            logged = os.path.getsize(lab.path("istiod.err")) - ist_err0
            zin = sum(proc_stats(z.p.pid)[3] - zio0[z.i][3] for z in zts)
            pc = istiod_loads(lab.path("istiod.err"), ist_err0)
            steps.append({
                "step": step, "files_changed": changed,
                "istiod_parse_convert_s": pc[-1] if pc else None,
                "reload_s": round(reloaded - t0, 4),
                "fanout_ms": [round((arrived[z.i] - reloaded) * 1000, 2) for z in zts],
                "end_to_end_ms": [round((arrived[z.i] - t0) * 1000, 2) for z in zts],
                "istiod_bytes_written": io1[4] - io0[4] - logged,
                "ztunnel_bytes_read_per_ztunnel": zin // len(zts),
                "istiod_cpu_s": round(io1[0] - io0[0], 3)})
        res["churn"] = steps
        fan = [v for s in steps for v in s["fanout_ms"]]
        e2e = [v for s in steps for v in s["end_to_end_ms"]]
        res["fanout_ms"] = {"p50": pct(fan, 50), "p99": pct(fan, 99), "max": max(fan) if fan else None}
        res["end_to_end_ms"] = {"p50": pct(e2e, 50), "p99": pct(e2e, 99)}
        if steps:
            res["bytes_per_change"] = {
                "istiod_written_all_streams": sum(s["istiod_bytes_written"] for s in steps) // len(steps),
                "per_ztunnel_read": sum(s["ztunnel_bytes_read_per_ztunnel"] for s in steps) // len(steps)}
        want0, want = want, check_state(meshdir, files)
        bad = converge(zts, want, 120)
        # The comparison must see the churn: the state before it no longer matches.
        if a.churn and diff(want0, got_state(zts[0].dump())) is None:
            raise Fail("after churn ztunnel 0 still matches the initial state")
        res["converged"] = not bad
        res["convergence_errors"] = bad
        st = proc_stats(ist.p.pid)
        res["istiod"] = {"cpu_s": st[0], "rss_kib": st[1], "hwm_kib": st[2]}
        res["ztunnel"] = [dict(zip(("cpu_s", "rss_kib", "hwm_kib"), proc_stats(z.p.pid)[:3])) for z in zts]
        idle = res.get("idle_rss_kib")
        if idle and a.pods_n:
            zr = sorted(x["rss_kib"] for x in res["ztunnel_after_sync"])
            res["ztunnel_kib_per_workload"] = round((zr[len(zr) // 2] - idle["ztunnel"]) / max(1, res["workloads"]), 3)
            res["istiod_kib_per_pod"] = round((res["istiod"]["rss_kib"] - idle["istiod"]) / a.pods_n, 3)
            res["istiod_kib_per_pod_synced"] = round(
                (res["istiod_after_sync"]["rss_kib"] - idle["istiod"]) / a.pods_n, 3)
        for p in list(lab.procs):
            rc = lab.stop(p)
            if rc not in (0, -signal.SIGTERM, 143):
                raise Fail(f"{p.name} exited {rc}: {lab.tail(p.name + '.err')}")
        return res
    finally:
        lab.stop_all()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


def authz(a):
    exe = os.path.join(os.environ.get("BUILD_DIR", os.path.join(ROOT, "build")), "bench", "authz_bench")
    rows = []
    for ns in a.authz_namespaces:
        r = subprocess.run([exe, str(ns), "10", "10", "10", str(a.authz_iters)],
                           capture_output=True, text=True)
        if r.returncode:
            raise Fail(f"authz_bench: {r.stderr.strip()}")
        rows.append(json.loads(r.stdout))
    return rows


def fmt(v, d=1):
    if v is None:
        return "-"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def report(res, rows):
    print(f"load average {res['load'][0]:.2f} {res['load'][1]:.2f} {res['load'][2]:.2f}, "
          f"{res['cpus']} CPUs; mesh {res['shape']}")
    print(f"{res['workloads']} workloads, {res['services']} services, {res['policies']} policies; "
          f"{res['yaml_bytes'] / 1e6:.1f} MB YAML; fake-istiod loaded in {res['istiod_load_s']:.2f} s")
    s = sorted(res["sync_s"])
    fs = sorted(res["full_sync_s"])
    row = "{:<58} {:>16} {:>14}"
    print(row.format("measure", "measured", "target"))
    print(row.format("ztunnel initial sync p50 / max, s (connect->all held)",
                     f"{pct(fs, 50):.3f} / {fs[-1]:.3f}", "<=1 @100k"))
    print(row.format("  ztunnel's own 'synced' (last part of each type's state)",
                     f"{pct(s, 50):.3f} / {s[-1]:.3f}", "-"))
    print(row.format("push fan-out p50 / p99, ms (istiod reload->ztunnel)",
                     f"{fmt(res['fanout_ms']['p50'])} / {fmt(res['fanout_ms']['p99'])}", "<=100 @100k"))
    print(row.format("change end to end p50 / p99, ms (file->ztunnel)",
                     f"{fmt(res['end_to_end_ms']['p50'])} / {fmt(res['end_to_end_ms']['p99'])}", "-"))
    if "bytes_per_change" in res:
        b = res["bytes_per_change"]
        print(row.format("bytes per change: istiod out (all) / per ztunnel in",
                         f"{b['istiod_written_all_streams']} / {b['per_ztunnel_read']}", "-"))
    print(row.format("fake-istiod CPU s / RSS MiB", f"{res['istiod']['cpu_s']:.2f} / {res['istiod']['rss_kib'] / 1024:.1f}", "-"))
    pc = res.get("istiod_parse_convert_s")
    if pc:
        print(row.format("fake-istiod start: parse / convert, s", f"{pc[0]:.2f} / {pc[1]:.2f}", "-"))
    rl = [s["istiod_parse_convert_s"] for s in res.get("churn", []) if s.get("istiod_parse_convert_s")]
    if rl:
        print(row.format("fake-istiod reload per change: parse / convert, s p50",
                         f"{pct([x[0] for x in rl], 50):.2f} / {pct([x[1] for x in rl], 50):.2f}", "-"))
    if "istiod_sync_cpu_s" in res:
        print(row.format(f"fake-istiod CPU s serving the initial sync ({len(res['sync_s'])} ztunnels)",
                         f"{res['istiod_sync_cpu_s']:.2f}", "-"))
    zc = sorted(x["cpu_s"] for x in res["ztunnel"])
    zr = sorted(x["rss_kib"] for x in res["ztunnel"])
    print(row.format("ztunnel CPU s p50/max", f"{pct(zc, 50):.2f} / {zc[-1]:.2f}", "-"))
    print(row.format("ztunnel RSS MiB p50/max", f"{pct(zr, 50) / 1024:.1f} / {zr[-1] / 1024:.1f}", "-"))
    if "ztunnel_kib_per_workload" in res:
        print(row.format("ztunnel KiB per workload above idle", fmt(res["ztunnel_kib_per_workload"], 2), "<=1"))
        print(row.format("fake-istiod KiB per pod above idle: synced / after churn",
                         f"{fmt(res['istiod_kib_per_pod_synced'], 2)} / {fmt(res['istiod_kib_per_pod'], 2)}",
                         "<=2"))
    print(row.format("every /config_dump converged to fake-istiod check",
                     "yes" if res["converged"] else "NO", "yes"))
    for r in rows:
        print(row.format(f"authz decision, ns ({r['policies']} policies x {r['rules_per_policy']} rules) allow/deny",
                         f"{r['allow_ns']:.0f} / {r['deny_ns']:.0f}", "<=1000"))
        if "scan_allow_ns" in r:
            print(row.format("  the same by a scan of every policy (reference), allow/deny",
                             f"{r['scan_allow_ns']:.0f} / {r['scan_deny_ns']:.0f}", "-"))


def main():
    ap = argparse.ArgumentParser(prog="bench/controlplane.sh", description=__doc__)
    ap.add_argument("--pods", dest="pods_n", type=int, default=10000)
    ap.add_argument("--ztunnels", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--namespaces", type=int, default=100)
    ap.add_argument("--pods-per-service", type=int, default=10)
    ap.add_argument("--policies", type=int, default=1, help="per namespace")
    ap.add_argument("--churn", type=int, default=5, help="churn steps")
    ap.add_argument("--split", type=int, default=0,
                    help="pods per generated file (default max(250, pods/400): a churn step "
                         "rewrites one pods file and the policies file)")
    ap.add_argument("--authz", default="100,1000", help="authz bench namespace counts (x10 policies), or none")
    ap.add_argument("--authz-iters", type=int, default=200000)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle baseline")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.quick:
        a.pods_n, a.ztunnels, a.nodes, a.namespaces, a.churn = 60, 3, 3, 3, 3
        a.authz, a.authz_iters = "10", 2000
    if not 1 <= a.ztunnels <= a.nodes:
        ap.error("--ztunnels must be 1..--nodes")
    a.authz_namespaces = [] if a.authz == "none" else [int(x) for x in a.authz.split(",")]
    try:
        res = run(a)
        res["authz"] = authz(a)
    except Fail as e:
        print(f"controlplane: FAIL: {e}", file=sys.stderr)
        return 1
    report(res, res["authz"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {a.json}")
        # Beside it: the plot over every controlplane-*.json of that directory (mesh sizes).
        d = os.path.dirname(os.path.abspath(a.json))
        if os.path.basename(a.json).startswith("controlplane-"):
            import glob
            import plots
            cps = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(d, "controlplane-*.json")))]
            for p in plots.controlplane(cps, d):
                print(f"wrote {p}")
    return 0 if res["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
