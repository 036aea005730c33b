#!/usr/bin/env python3
"""PNG plots of the benchmarks' JSON with gnuplot (small files, meant to be committed):
  dataplane-paths.png       bulk MB/s and proxy CPU s/GiB per path
  dataplane-latency.png     64 B round-trip latency by percentile per path
  dataplane-scaling.png     MB/s by parallel connections, one line per worker-thread setting
  controlplane-scaling.png  sync time and memory per workload by mesh size
    plots.py DIR    redraws from DIR/dataplane.json and DIR/controlplane-*.json (make plots)
Without gnuplot nothing is drawn and one line says so."""
import glob
import json
import os
import shutil
import subprocess
import sys

TERM = 'set terminal pngcairo size 720,360 font "DejaVu Sans,9" noenhanced\n'
ORDER = ("direct", "stunnel", "haproxy", "ztunnel")


def _draw(script, out):
    if not shutil.which("gnuplot"):
        return None
    r = subprocess.run(["gnuplot"], input=TERM + f'set output "{out}"\n' + script, text=True,
                       capture_output=True)
    if r.returncode:
        raise RuntimeError(f"gnuplot for {out}: {r.stderr.strip()}")
    return out


def dataplane(o, outdir):
    if not shutil.which("gnuplot"):
        print("plots: gnuplot not installed (scripts/deps.sh --bench): no PNG written")
        return []
    done = []
    paths = [p for p in ORDER if p in o["paths"]]
    rows = "\n".join(f'"{p}" {o["paths"][p]["bulk_mbps"]} {o["paths"][p]["cpu_s_per_gib"] or 0}'
                     for p in paths)
    done.append(_draw(f"""$d << EOD
{rows}
EOD
set multiplot layout 1,2 title "data plane paths (one run, same lab)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
unset key
set yrange [0:*]
set title "bulk echo, MB/s (higher is better)"
plot $d using 2:xtic(1) lc rgb "#4477aa"
set title "proxy CPU seconds per GiB (lower is better)"
plot $d using 3:xtic(1) lc rgb "#cc6677"
unset multiplot
""", os.path.join(outdir, "dataplane-paths.png")))

    pcts = ("p50", "p90", "p99", "max")
    lines = []
    for p in paths:
        lu = o["paths"][p]["rtt_us"]
        lines.append(f"${p} << EOD\n" + "\n".join(f"{i} {lu[k]}" for i, k in enumerate(pcts)) + "\nEOD")
    plot = ", ".join(f'${p} using 1:2 with linespoints lw 2 title "{p}"' for p in paths)
    done.append(_draw("\n".join(lines) + f"""
set title "64 B round trip latency by percentile (lower is better)"
set xtics ("p50" 0, "p90" 1, "p99" 2, "max" 3)
set ylabel "microseconds"
set logscale y
set grid
set key top left
plot {plot}
""", os.path.join(outdir, "dataplane-latency.png")))

    if o.get("scaling"):
        workers = sorted({x["workers"] for x in o["scaling"]})
        blocks, series = [], []
        for w in workers:
            pts = sorted((x["parallel"], x["bulk_mbps"], x["cpu_s_per_gib"]) for x in o["scaling"]
                         if x["workers"] == w)
            blocks.append(f"$w{w} << EOD\n" + "\n".join(f"{a} {b} {c}" for a, b, c in pts) + "\nEOD")
            series.append(w)
        p1 = ", ".join(f'$w{w} using 1:2 with linespoints lw 2 title "{w} worker(s)"' for w in series)
        p2 = ", ".join(f'$w{w} using 1:3 with linespoints lw 2 title "{w} worker(s)"' for w in series)
        done.append(_draw("\n".join(blocks) + f"""
set multiplot layout 1,2 title "ztunnel scaling: ZTUNNEL_WORKER_THREADS x parallel bulk connections"
set logscale x 2
set grid
set key bottom right
set xlabel "parallel connections"
set yrange [0:*]
set title "MB/s"
plot {p1}
set title "CPU seconds per GiB"
plot {p2}
unset multiplot
""", os.path.join(outdir, "dataplane-scaling.png")))
    return [x for x in done if x]


def controlplane(results, outdir):
    """results: controlplane.py JSON objects of different mesh sizes."""
    if not shutil.which("gnuplot"):
        print("plots: gnuplot not installed (scripts/deps.sh --bench): no PNG written")
        return []
    rs = sorted(results, key=lambda r: r["workloads"])
    rows = "\n".join(
        f'{r["workloads"]} {sorted(r["full_sync_s"])[len(r["full_sync_s"]) // 2]} '
        f'{r.get("ztunnel_kib_per_workload", 0)} {r.get("istiod_kib_per_pod", 0)} '
        f'{r["istiod"]["rss_kib"] / 1024:.1f}'
        for r in rs)
    return [x for x in [_draw(f"""$d << EOD
{rows}
EOD
set multiplot layout 1,2 title "control plane by mesh size"
set logscale x 10
set grid
set xlabel "workloads"
set key top left
set title "ztunnel initial sync, seconds (median)"
plot $d using 1:2 with linespoints lw 2 title "sync", 1 with lines dt 2 title "target at 100k"
set title "KiB per workload above idle"
set yrange [0:*]
plot $d using 1:3 with linespoints lw 2 title "ztunnel", $d using 1:4 with linespoints lw 2 title "fake-istiod", 1 with lines dt 2 title "ztunnel target", 2 with lines dt 3 title "fake-istiod target"
unset multiplot
""", os.path.join(outdir, "controlplane-scaling.png"))] if x]


def main():
    d = sys.argv[1]
    if not shutil.which("gnuplot"):
        print("plots: gnuplot not installed (scripts/deps.sh --bench)", file=sys.stderr)
        return 1
    out = []
    if os.path.exists(os.path.join(d, "dataplane.json")):
        with open(os.path.join(d, "dataplane.json")) as f:
            out += dataplane(json.load(f), d)
    cps = []
    for p in sorted(glob.glob(os.path.join(d, "controlplane-*.json"))):
        with open(p) as f:
            cps.append(json.load(f))
    if cps:
        out += controlplane(cps, d)
    for p in out:
        print(f"wrote {p}")
    return 0 if out else 1


if __name__ == "__main__":
    sys.exit(main())
