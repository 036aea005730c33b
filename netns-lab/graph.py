#!/usr/bin/env python3
"""Writes the graphviz (DOT) picture of a running netns-lab on stdout.

Reads the lab's state directory (inventory.json: nodes and pods; pods: addresses and mesh
membership) and, per node, what lab graph fetched from its ztunnel: DIR/NODE.config.json
(/config_dump: services with their VIPs) and DIR/NODE.metrics (Prometheus text: the
istio_tcp_* counters by source and destination workload and principal). Invariant: it draws
only what those sources say; a ztunnel that did not answer is drawn as down, no edge is made
up. Usage: graph.py STATE_DIR FETCH_DIR
"""
import json
import os
import re
import sys

state, fetched = sys.argv[1], sys.argv[2]
inv = json.load(open(os.path.join(state, "inventory.json")))
name = os.path.basename(state.rstrip("/"))


BR = "\\n"  # graphviz's line break in a label


def q(s):
    # Names are Kubernetes names and addresses: only quotes need escaping; "\\n" in a label
    # is graphviz's line break.
    return '"' + str(s).replace('"', '\\"') + '"'


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return str(n)


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics(path):
    out = []
    try:
        text = open(path).read()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), value))
    return out


nodes = sorted(set(inv.get("nodes", [])) | {p.get("node") or "node-1" for p in inv["pods"]})
pod_ip = {}
out = ["digraph lab {", "  graph [rankdir=LR, fontname=Helvetica, label=" + q(f"netns-lab {name}") +
       ", labelloc=t, compound=true];",
       "  node [fontname=Helvetica, fontsize=10]; edge [fontname=Helvetica, fontsize=9];",
       "  istiod [shape=component, style=filled, fillcolor=lightyellow, label=\"fake-istiod\\nxDS + CA :15012\"];"]
COUNTERS = ("istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
            "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total")
services = {}
endpoints = {}
edges = {}
for n in nodes:
    up = os.path.exists(os.path.join(fetched, f"{n}.config.json"))
    cfg = {}
    if up:
        try:
            cfg = json.load(open(os.path.join(fetched, f"{n}.config.json")))
        except ValueError:
            up = False
    for s in (cfg.get("services") or []) if isinstance(cfg.get("services"), list) else \
            (cfg.get("services") or {}).values() if isinstance(cfg.get("services"), dict) else []:
        if isinstance(s, dict):
            key = f"{s.get('namespace', '')}/{s.get('name', '')}"
            vips = [v.split("/")[-1] if isinstance(v, str) else str(v) for v in s.get("vips") or []]
            services[key] = (s, vips)
    # Endpoints: each workload names the services it backs ("NS/HOSTNAME": {port: target}).
    for w in cfg.get("workloads") or []:
        if isinstance(w, dict):
            for ref in (w.get("services") or {}):
                endpoints.setdefault(ref, set()).add(f"{w.get('namespace')}/{w.get('name')}")
    out.append(f"  subgraph {q('cluster_' + n)} {{ label={q(n)}; style=rounded; color=gray40;")
    zt = f"zt_{n}"
    out.append(f"    {q(zt)} [shape=box3d, style=filled, fillcolor={'palegreen' if up else 'salmon'}, "
               f"label={q('ztunnel ' + n + ('' if up else ' (down)'))}];")
    for p in inv["pods"]:
        if (p.get("node") or "node-1") != n:
            continue
        pid = f"{p['namespace']}/{p['name']}"
        for ip in p.get("ips", []):
            pod_ip[ip] = pid
        label = f"{pid}\\n{', '.join(p.get('ips', []))}"
        if p.get("waypoint"):
            attrs = f"shape=hexagon, style=filled, fillcolor=plum, label={q('waypoint ' + p['waypoint'] + BR + label)}"
        elif p.get("inMesh"):
            attrs = f"shape=ellipse, style=filled, fillcolor=lightblue, label={q(label + BR + 'meshed (sa ' + str(p.get('serviceAccount')) + ')')}"
        else:
            attrs = f"shape=ellipse, style=dashed, label={q(label + BR + 'not meshed')}"
        out.append(f"    {q(pid)} [{attrs}];")
        if p.get("inMesh"):
            out.append(f"    {q(pid)} -> {q(zt)} [style=dotted, arrowhead=none, color=gray60];")
    out.append("  }")
    out.append(f"  istiod -> {q(zt)} [style=dashed, color=goldenrod, label=\"xDS\"];")
    rows = metrics(os.path.join(fetched, f"{n}.metrics")) or []
    # Counted on the destination side only (each connection once); live = opened - closed.
    for metric, lab, value in rows:
        if lab.get("reporter") != "destination" or metric not in COUNTERS:
            continue
        src = f"{lab.get('source_workload_namespace', '?')}/{lab.get('source_workload', '?')}"
        dst = f"{lab.get('destination_workload_namespace', '?')}/{lab.get('destination_workload', '?')}"
        key = (src, dst, lab.get("source_principal", "unknown"), lab.get("destination_principal", "unknown"),
               lab.get("connection_security_policy", "unknown"))
        e = edges.setdefault(key, {"opened": 0, "closed": 0, "sent": 0, "received": 0})
        if metric == "istio_tcp_connections_opened_total":
            e["opened"] += value
        elif metric == "istio_tcp_connections_closed_total":
            e["closed"] += value
        elif metric == "istio_tcp_sent_bytes_total":
            e["sent"] += value
        elif metric == "istio_tcp_received_bytes_total":
            e["received"] += value

known = {f"{p['namespace']}/{p['name']}" for p in inv["pods"]}
for key, (s, vips) in sorted(services.items()):
    sid = "svc_" + key
    out.append(f"  {q(sid)} [shape=note, style=filled, fillcolor=lightgoldenrod1, "
               f"label={q('Service ' + key + BR + ', '.join(vips))}];")
    for wl in sorted(endpoints.get(f"{s.get('namespace')}/{s.get('hostname')}", ())):
        if wl in known:
            out.append(f"  {q(sid)} -> {q(wl)} [style=dotted, color=goldenrod3];")

for (src, dst, sp, dp, sec), e in sorted(edges.items()):
    live = int(e["opened"] - e["closed"])
    if src not in known:
        out.append(f"  {q(src)} [shape=plaintext];")
    if dst not in known:
        out.append(f"  {q(dst)} [shape=plaintext];")
    hbone = sec == "mutual_tls"
    label = (f"{'HBONE mTLS' if hbone else 'plaintext'}: {live} live / {int(e['opened'])} opened\\n"
             f"{sp.replace('spiffe://', '')} -> {dp.replace('spiffe://', '')}\\n"
             f"{human(e['received'])} in, {human(e['sent'])} out")
    style = "bold" if live > 0 else "dashed"
    out.append(f"  {q(src)} -> {q(dst)} [color={'darkgreen' if hbone else 'gray30'}, style={style}, "
               f"penwidth={3 if live > 0 else 1}, label={q(label)}];")
out.append("}")
print("\n".join(out))
