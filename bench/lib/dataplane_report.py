#!/usr/bin/env python3
"""Turns bench/dataplane.sh's result lines into its tables (stdout), DIR/dataplane.json and,
when gnuplot is installed, DIR/dataplane-*.png.
    dataplane_report.py RESULTS.jsonl DIR"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import plots  # noqa: E402

PEERS = ("stunnel", "haproxy")


def load(path):
    paths, many, idle, scaling, notes, meta = {}, {}, None, [], {}, {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "note" in r:
                notes[r["note"]] = r["text"]
                continue
            sec, p = r.pop("section"), r.pop("path")
            if sec == "meta":
                meta = r
            elif sec == "paths":
                paths.setdefault(p, {}).update(r)
            elif sec == "many":
                many[p] = r["rr"]
            elif sec == "idle":
                idle = r
            elif sec == "scaling":
                scaling.append(r)
    return meta, paths, many, idle, scaling, notes


def gib(j):
    return (j["bytes_sent"] + j["bytes_received"]) / 2**30


def summarize(meta, paths, many, idle, scaling, notes):
    out = {"meta": meta, "notes": notes, "paths": {}, "ratio": {}, "many": {}, "scaling": [],
           "targets": []}
    direct = paths.get("direct")
    for p, r in paths.items():
        s = {"bulk_mbps": r["bulk"]["throughput_mbps"],
             "cpu_s_per_gib": None if p == "direct" else round(r["cpu_ticks"] / r["hz"] / gib(r["bulk"]), 3),
             "rtt_us": r["rr"]["latency_us"],
             "short_conn_per_s": round(r["short"]["connections"] / (r["short"]["duration_ms"] / 1000), 1)}
        if direct:
            d = direct["rr"]["latency_us"]
            s["added_us"] = {k: s["rtt_us"][k] - d[k] for k in ("p50", "p90", "p99", "max")}
        out["paths"][p] = s
    zt = out["paths"].get("ztunnel")
    peers = [out["paths"][p] for p in PEERS if p in out["paths"]]
    if zt and peers:
        best = lambda key, f: f(x[key] for x in peers)  # noqa: E731
        # At smoke sizes a peer may use less than one clock tick: no ratio then.
        div = lambda a, b: a / b if b else None  # noqa: E731
        out["ratio"] = {
            "bulk_mbps": div(zt["bulk_mbps"], best("bulk_mbps", max)),
            "cpu_s_per_gib": div(zt["cpu_s_per_gib"], best("cpu_s_per_gib", min)),
            "added_p50_us": zt["added_us"]["p50"] / max(1, min(x["added_us"]["p50"] for x in peers)),
            "added_p99_us": zt["added_us"]["p99"] / max(1, min(x["added_us"]["p99"] for x in peers)),
            "short_conn_per_s": div(zt["short_conn_per_s"], best("short_conn_per_s", max))}
    for p, r in many.items():
        out["many"][p] = {"connections": r["connections"], "ok": r["ok"], "requests": r["requests"],
                          "latency_us": r["latency_us"]}
    for r in scaling:
        out["scaling"].append({"workers": r["workers"], "parallel": r["parallel"],
                               "threads_seen": r["threads_seen"],
                               "bulk_mbps": r["bulk"]["throughput_mbps"],
                               "cpu_s_per_gib": round(r["cpu_ticks"] / r["hz"] / gib(r["bulk"]), 3)})
    if idle:
        n = idle["connections"]
        c, s = idle["client_rss_kib"], idle["server_rss_kib"]
        out["idle"] = {"connections": n, "client_rss_kib": c, "server_rss_kib": s,
                       "client_kib_per_conn": round((c[1] - c[0]) / n, 2),
                       "server_kib_per_conn": round((s[1] - s[0]) / n, 2),
                       "pair_kib_per_conn": round((c[1] - c[0] + s[1] - s[0]) / n, 2)}
    # The targets, each with the figure it is judged on.
    t = out["targets"]
    div = lambda a, b: a / b if b else None  # noqa: E731
    ha = out["paths"].get("haproxy")
    if zt and ha:
        t.append(("proxy CPU per GiB <= 0.7x HAProxy", div(zt["cpu_s_per_gib"], ha["cpu_s_per_gib"]), "<=", 0.7))
        t.append(("bulk throughput >= 1.2x HAProxy", div(zt["bulk_mbps"], ha["bulk_mbps"]), ">=", 1.2))
    if zt and peers:
        t.append(("added p50 latency <= 0.6x best peer", out["ratio"]["added_p50_us"], "<=", 0.6))
    if zt and direct:
        t.append(("short connections/s >= 0.8x direct TCP",
                  div(zt["short_conn_per_s"], out["paths"]["direct"]["short_conn_per_s"]), ">=", 0.8))
    one = [x for x in out["scaling"] if x["workers"] == 1 and x["parallel"] == 16]
    two = [x for x in out["scaling"] if x["workers"] == 2 and x["parallel"] == 16]
    if one and two:
        t.append(("16 parallel: 2 workers >= 1.6x 1 worker", div(two[0]["bulk_mbps"], one[0]["bulk_mbps"]), ">=", 1.6))
    if idle and idle["connections"] >= 10000:
        t.append(("RSS <= 8 KiB per idle tunneled connection (client ztunnel)",
                  out["idle"]["client_kib_per_conn"], "<=", 8))
    out["targets"] = [{"target": n, "measured": None if v is None else round(v, 3),
                       "met": None if v is None else (v <= lim if op == "<=" else v >= lim)}
                      for n, v, op, lim in t]
    return out


def f(v, d=0):
    return "-" if v is None else f"{v:.{d}f}"


def print_tables(o):
    cols = ["direct"] + [p for p in PEERS if p in o["paths"]] + ["ztunnel"]
    cols = [c for c in cols if c in o["paths"]]
    m = o["meta"]
    print(f"\n== paths (bulk {m.get('mib')} MiB echo, {m.get('requests')} x 64 B round trips, "
          f"{m.get('short_connections')} short connections; load at start {m.get('load')})")
    w = "{:<40}" + " {:>16}" * (len(cols) + 1)
    names = {"direct": "direct TCP", "stunnel": "stunnel pair", "haproxy": "HAProxy pair",
             "ztunnel": "ztunnel pair"}
    print(w.format("measure", *[names[c] for c in cols], "zt/best peer"))
    P, R = o["paths"], o["ratio"]

    def row(label, fn, rk):
        print(w.format(label, *[fn(P[c], c) for c in cols], f(R.get(rk), 2) if rk in R else "-"))
    row("bulk echo, MB/s", lambda p, c: f(p["bulk_mbps"]), "bulk_mbps")
    row("proxy CPU seconds per GiB moved", lambda p, c: f(p["cpu_s_per_gib"], 2), "cpu_s_per_gib")
    for q in ("p50", "p99"):
        row(f"64 B round trip {q}, us (added)",
            lambda p, c, q=q: f"{p['rtt_us'][q]}" + ("" if c == "direct" else f" (+{p['added_us'][q]})"),
            f"added_{q}_us")
    row("short connections/s", lambda p, c: f(p["short_conn_per_s"]), "short_conn_per_s")
    for k, v in o["notes"].items():
        print(f"  note: {v}")
    if o["many"]:
        print("\n== concurrent tunnels doing request/response (64 B)")
        for p, r in o["many"].items():
            lu = r["latency_us"]
            print(f"{p:<10} {r['connections']} connections x {r['requests'] // max(1, r['connections'])} "
                  f"requests: ok {r['ok']}, p50 {lu['p50']} us, p99 {lu['p99']} us, max {lu['max']} us")
    if "idle" in o:
        i = o["idle"]
        print(f"\n== {i['connections']} idle tunneled connections: RSS client ztunnel "
              f"{i['client_rss_kib'][0]} -> {i['client_rss_kib'][1]} KiB ({i['client_kib_per_conn']} KiB/conn), "
              f"server ztunnel {i['server_rss_kib'][0]} -> {i['server_rss_kib'][1]} KiB "
              f"({i['server_kib_per_conn']} KiB/conn)")
    if o["scaling"]:
        pars = sorted({x["parallel"] for x in o["scaling"]})
        workers = sorted({x["workers"] for x in o["scaling"]})
        print("\n== scaling: ZTUNNEL_WORKER_THREADS x parallel bulk connections (MB/s, CPU s/GiB)")
        print("{:<26}".format("workers (threads seen)") + "".join(f" {str(p) + ' conn':>18}" for p in pars))
        for wk in workers:
            cells = {x["parallel"]: x for x in o["scaling"] if x["workers"] == wk}
            seen = next(iter(cells.values()))["threads_seen"]
            print("{:<26}".format(f"{wk} ({seen})") + "".join(
                f" {f(cells[p]['bulk_mbps']) + ' / ' + f(cells[p]['cpu_s_per_gib'], 2):>18}" if p in cells else " -"
                for p in pars))
        seen = {x["threads_seen"] for x in o["scaling"]}
        if len(seen) == 1:
            print(f"  ztunnel ran {seen.pop()} thread(s) whatever ZTUNNEL_WORKER_THREADS said: the data "
                  "plane is single-threaded (the variable is not honoured yet), so rows differ by noise only")
    if o["targets"]:
        print("\n== targets (issue 12), as ratios from this run")
        for t in o["targets"]:
            print(f"{t['target']:<62} {str(t['measured']):>8}  {'-' if t['met'] is None else ('met' if t['met'] else 'MISSED')}")


def main():
    res, outdir = sys.argv[1], sys.argv[2]
    o = summarize(*load(res))
    print_tables(o)
    path = os.path.join(outdir, "dataplane.json")
    with open(path, "w") as fh:
        json.dump(o, fh, indent=1)
    print(f"\nwrote {path}")
    for p in plots.dataplane(o, outdir):
        print(f"wrote {p}")


if __name__ == "__main__":
    main()
