#!/usr/bin/env python3
"""Helpers of run.sh (Python standard library only).

    report.py parse-wrk WRK_OUTPUT HZ TICKS0 TICKS1 REDIS_CPU0 REDIS_CPU1 CALLS0 CALLS1
        one raw.csv row tail: requests,seconds,rps,p50_us,p99_us,errors,server_cpu_us_per_req,
        redis_cpu_us_per_req,redis_calls_per_req (commands run, scripts' included)
    report.py report RESULTS_DIR
        raw.csv + commands.csv + memory.csv + machine.txt -> results.csv, results.md, chart.svg
"""

import csv
import re
import statistics
import sys
from pathlib import Path

LABELS = {
    "axum-ours": "axum + tower-sessions 0.15 + redis-sessions",
    "axum-ours-sliding": "axum + tower-sessions 0.15 + redis-sessions, idle_timeout (GETEX)",
    "axum-ours-indexed": "axum + tower-sessions 0.15 + redis-sessions, index_by(\"user_id\")",
    "axum-ours-cached": "axum + tower-sessions 0.15 + redis-sessions, idle_timeout + cache(10,000)",
    "axum-ours-merged": "axum + tower-sessions 0.15 + redis-sessions, merge_concurrent_saves(true)",
    "axum-tsrs": "axum + tower-sessions 0.14 + tower-sessions-redis-store 0.16 (fred)",
    "axum-memory": "axum + tower-sessions 0.15 MemoryStore (no Redis)",
    "axum-none": "axum, no session layer (ceiling)",
    "actix-ours": "actix-web + actix-session 0.11 + redis-sessions",
    "actix-ours-sliding": "actix-web + actix-session 0.11 + redis-sessions, idle_timeout (GETEX)",
    "actix-ours-cached": "actix-web + actix-session 0.11 + redis-sessions, idle_timeout + cache(10,000)",
    "actix-ours-merged": "actix-web + actix-session 0.11 + redis-sessions, merge_concurrent_saves(true)",
    "actix-redis": "actix-web + actix-session 0.11 RedisSessionStore",
    "actix-cookie": "actix-web + actix-session 0.11 CookieSessionStore (no Redis)",
    "actix-none": "actix-web, no session middleware (ceiling)",
    "express": "express 5 + express-session + connect-redis (node)",
}
OURS = ["axum-ours", "axum-ours-sliding", "axum-ours-indexed", "axum-ours-cached", "axum-ours-merged",
        "actix-ours", "actix-ours-sliding", "actix-ours-cached", "actix-ours-merged"]
PEERS = ["axum-tsrs", "actix-redis", "express"]
CEILINGS = {"axum": "axum-none", "actix": "actix-none"}
# The session layer on a store without Redis: what the framework's session machinery costs alone.
LAYER_ONLY = {"axum": "axum-memory", "actix": "actix-cookie"}
BEST_PEER = {"axum": "axum-tsrs", "actix": "actix-redis"}
PATHS = ["/login", "/inc", "/read"]
UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def duration_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text}")
    return float(m.group(1)) * UNITS_US[m.group(2)]


def parse_wrk(args):
    out, hz, t0, t1, c0, c1, k0, k1 = args
    text = Path(out).read_text()
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", text)
    requests, seconds = int(m.group(1)), duration_us(m.group(2) + m.group(3)) / 1e6
    p50 = duration_us(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
    p99 = duration_us(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(int(g) for g in m.groups())
    n = max(requests, 1)
    server_us = (float(t1) - float(t0)) * 1e6 / float(hz) / n
    redis_us = (float(c1) - float(c0)) * 1e6 / n
    cmds = (int(k1) - int(k0)) / n
    print(f"{requests},{seconds:.2f},{requests / seconds:.0f},{p50:.0f},{p99:.0f},{errors},"
          f"{server_us:.1f},{redis_us:.1f},{cmds:.3f}")


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def aggregate(raw, sent):
    """Medians per (stack, path); `cmds` is the commands sent per request from commands.csv
    (the counting pass), `calls` the commands run per request (scripts' included, timed runs).
    A results directory from before commands.csv has only the one figure (`redis_cmds_per_req`)."""
    groups = {}
    for row in raw:
        groups.setdefault((row["stack"], row["path"]), []).append(row)
    agg = {}
    for key, rows in groups.items():
        med = lambda f: statistics.median(float(r[f]) for r in rows)  # noqa: E731
        rps = [float(r["rps"]) for r in rows]
        agg[key] = {
            "rps": med("rps"), "rps_min": min(rps), "rps_max": max(rps),
            "p50_us": med("p50_us"), "p99_us": med("p99_us"),
            "errors": sum(int(r["errors"]) for r in rows),
            "server_cpu": med("server_cpu_us_per_req"), "redis_cpu": med("redis_cpu_us_per_req"),
            "rounds": len(rows),
        }
        old = "redis_calls_per_req" not in rows[0]
        agg[key]["calls"] = med("redis_cmds_per_req" if old else "redis_calls_per_req")
        agg[key]["cmds"] = sent.get(key, agg[key]["calls"] if old else float("nan"))
    return agg


def chart(agg, stacks, path):
    """Grouped horizontal bars: one panel per path, one bar per stack (median req/s)."""
    bar, gap, left, width, panel_gap = 16, 4, 430, 360, 34
    kinds = [("redis-sessions", "#c0392b", lambda s: s in OURS),
             ("session layer without Redis", "#2980b9", lambda s: s in LAYER_ONLY.values()),
             ("no sessions", "#95a5a6", lambda s: s in CEILINGS.values()),
             ("peers", "#2c3e50", lambda s: True)]
    colour = lambda s: next(c for _, c, is_kind in kinds if is_kind(s))  # noqa: E731
    paths = [p for p in PATHS if any((s, p) in agg for s in stacks)]
    top_y = 58
    height = top_y + len(paths) * (len(stacks) * (bar + gap) + panel_gap) + 30
    total_w = left + width + 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{total_w}" height="{height}" fill="white"/>',
             '<text x="10" y="20" font-size="15" font-weight="bold">Requests/s (median of rounds; '
             'higher is better)</text>']
    x = 10
    for name, c, _ in kinds:
        if any(colour(s) == c for s in stacks):
            parts.append(f'<rect x="{x}" y="30" width="12" height="12" fill="{c}"/>')
            parts.append(f'<text x="{x + 16}" y="40">{name}</text>')
            x += 16 + 7 * len(name) + 18
    y = top_y
    for p in paths:
        top = max(agg[(s, p)]["rps"] for s in stacks if (s, p) in agg)
        parts.append(f'<text x="10" y="{y + 12}" font-weight="bold">GET {p}</text>')
        y += 18
        for s in stacks:
            if (s, p) not in agg:
                continue
            v = agg[(s, p)]["rps"]
            w = max(1, round(width * v / top))
            parts.append(f'<text x="{left - 6}" y="{y + bar - 4}" text-anchor="end">{LABELS.get(s, s)}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar}" fill="{colour(s)}"/>')
            parts.append(f'<text x="{left + w + 4}" y="{y + bar - 4}">{v:,.0f}</text>')
            y += bar + gap
        y += panel_gap - 18
    parts.append(f'<text x="10" y="{height - 10}" fill="#555">{path}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def ratio(agg, a, b, p):
    if (a, p) in agg and (b, p) in agg and agg[(b, p)]["rps"] > 0:
        return agg[(a, p)]["rps"] / agg[(b, p)]["rps"]
    return None


def targets(agg, mem):
    rows = []

    def add(what, value, goal, ok, shown=None):
        if value is None:
            return
        rows.append((what, shown if shown else f"{value:.2f}×", goal, "met" if ok else "**missed**"))

    for ours in ["axum-ours", "axum-ours-sliding"]:
        for p in ["/inc", "/read"]:
            r = ratio(agg, ours, "axum-tsrs", p)
            add(f"{p}: {ours} / axum-tsrs", r, "≥ 1.5×", r is not None and r >= 1.5)
    for ours in ["actix-ours-sliding", "actix-ours"]:
        for p in ["/inc", "/read"]:
            r = ratio(agg, ours, "actix-redis", p)
            add(f"{p}: {ours} / actix-redis", r, "≥ 1.0×", r is not None and r >= 1.0)
    # The client-side cache (issue 15).
    for p, goal in [("/read", 1.6), ("/inc", 1.6)]:
        r = ratio(agg, "axum-ours-cached", "axum-tsrs", p)
        add(f"{p}: axum-ours-cached / axum-tsrs", r, f"≥ {goal}×", r is not None and r >= goal)
    r = ratio(agg, "axum-ours-cached", "axum-memory", "/read")
    add("/read: axum-ours-cached / axum-memory", r, "≥ 0.9×", r is not None and r >= 0.9)
    for p, goal in [("/read", 1.4), ("/inc", 1.25)]:
        r = ratio(agg, "actix-ours-cached", "actix-redis", p)
        add(f"{p}: actix-ours-cached / actix-redis", r, f"≥ {goal}×", r is not None and r >= goal)
    for ours in ["axum-ours-cached", "actix-ours-cached"]:
        if (ours, "/read") in agg:
            c = agg[(ours, "/read")]["cmds"]
            add(f"/read Redis commands/request: {ours} (warm)", c, "≤ 0.05", c <= 0.05, f"{c:.3f}")
        if (ours, "/inc") in agg:
            c = agg[(ours, "/inc")]["cmds"]
            add(f"/inc Redis commands/request: {ours}", c, "1", c <= 1.02, f"{c:.2f}")
    for ours in OURS:
        for p in PATHS:
            r = ratio(agg, ours, "express", p)
            add(f"{p}: {ours} / express", r, "≥ 5×", r is not None and r >= 5)
    for ours in OURS:
        r = ratio(agg, ours, CEILINGS[ours.split("-")[0]], "/read")
        add(f"/read: {ours} / {CEILINGS[ours.split('-')[0]]}", r, "≥ 0.6×", r is not None and r >= 0.6)
    for ours in OURS:
        if (ours, "/read") in agg and ours.endswith("sliding"):
            c = agg[(ours, "/read")]["cmds"]
            add(f"/read Redis commands/request: {ours} (TTL slid)", c, "1", c <= 1.02, f"{c:.2f}")
        if (ours, "/inc") in agg:
            c = agg[(ours, "/inc")]["cmds"]
            add(f"/inc Redis commands/request: {ours}", c, "≤ 2", c <= 2.02, f"{c:.2f}")
    peer_mem = {s: mem[s] for s in PEERS if s in mem}
    if peer_mem:
        best = min(peer_mem, key=lambda s: peer_mem[s]["memory_usage_bytes"])
        best_b = int(peer_mem[best]["memory_usage_bytes"])
        for ours in OURS:
            if ours in mem:
                b = int(mem[ours]["memory_usage_bytes"])
                add(f"MEMORY USAGE of one session: {ours} vs best peer ({best}, {best_b} B)", b,
                    f"≤ {best_b} B", b <= best_b, f"{b} B")
    return rows


def layer_rows(agg):
    """Informational (not targets): each Redis stack against the session layer alone on the same
    framework (tower-sessions' MemoryStore, actix-session's CookieSessionStore)."""
    rows = []

    def add(what, a, b, p):
        r = ratio(agg, a, b, p)
        if r is not None:
            rows.append((f"{p}: {what}", f"{a} / {b}", f"{r:.2f}×",
                         f"{agg[(a, p)]['server_cpu']:.1f} / {agg[(b, p)]['server_cpu']:.1f}"))

    for p in ["/read", "/inc"]:
        for ours in OURS:
            add("ours / layer-only on the same framework", ours, LAYER_ONLY[ours.split("-")[0]], p)
    for fw in ["axum", "actix"]:
        add("best peer / layer-only", BEST_PEER[fw], LAYER_ONLY[fw], "/read")
    return rows


def report(out):
    out = Path(out)
    raw = list(csv.DictReader((out / "raw.csv").open()))
    sent = {}
    if (out / "commands.csv").exists():
        for r in csv.DictReader((out / "commands.csv").open()):
            sent[(r["stack"], r["path"])] = int(r["sent"]) / max(int(r["requests"]), 1)
    mem = {r["stack"]: r for r in csv.DictReader((out / "memory.csv").open())} if (out / "memory.csv").exists() else {}
    machine = dict(line.rstrip("\n").split("=", 1) for line in (out / "machine.txt").open() if "=" in line)
    agg = aggregate(raw, sent)
    stacks = list(dict.fromkeys(r["stack"] for r in raw))
    paths = [p for p in PATHS if any(r["path"] == p for r in raw)]

    with (out / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stack", "path", "rounds", "rps_median", "rps_min", "rps_max", "p50_us", "p99_us",
                    "errors", "server_cpu_us_per_req", "redis_cpu_us_per_req", "redis_cmds_per_req",
                    "redis_calls_per_req", "session_memory_usage_bytes"])
        for s in stacks:
            for p in paths:
                a = agg.get((s, p))
                if a:
                    w.writerow([s, p, a["rounds"], f"{a['rps']:.0f}", f"{a['rps_min']:.0f}", f"{a['rps_max']:.0f}",
                                f"{a['p50_us']:.0f}", f"{a['p99_us']:.0f}", a["errors"], f"{a['server_cpu']:.1f}",
                                f"{a['redis_cpu']:.1f}", f"{a['cmds']:.2f}", f"{a['calls']:.2f}",
                                mem.get(s, {}).get("memory_usage_bytes", "")])

    (out / "chart.svg").write_text(chart(agg, stacks, f"{machine.get('nproc', '?')} cores, "
                                                     f"{machine.get('cpu', '?')}; {machine.get('load', '')}"))

    md = ["# HTTP comparison: results", "",
          f"Measured {machine.get('date', '?')} by `bench/run.sh` ({machine.get('load', '')}; "
          "medians of the rounds). The machine is shared: compare ratios within this table, not "
          "absolute numbers with other machines.", "",
          "![requests per second](chart.svg)", "", "## Targets", "",
          "| target | measured | goal | |", "|---|---|---|---|"]
    md += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(agg, mem)]
    if layer := layer_rows(agg):
        md += ["", "## Session layer without Redis (informational, not targets)", "",
               "Each stack against the same framework's session layer on a store without Redis "
               "(`axum-memory`: tower-sessions' `MemoryStore`; `actix-cookie`: actix-session's "
               "`CookieSessionStore`): the share of a request that the store and its Redis round "
               "trip cost beyond the session framework itself. Ratios of median requests/s; "
               "server CPU µs/request of both sides (Redis's own CPU not included).", "",
               "| informational | stacks | req/s ratio | server CPU µs/req (each) |", "|---|---|---|---|"]
        md += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in layer]
    md += ["", "## Throughput and latency", "",
           "| stack | path | req/s (median) | min–max over rounds | p50 | p99 | errors |", "|---|---|---|---|---|---|---|"]
    for p in paths:
        for s in stacks:
            if a := agg.get((s, p)):
                md.append(f"| {s} | {p} | {a['rps']:,.0f} | {a['rps_min']:,.0f}–{a['rps_max']:,.0f} | "
                          f"{fmt_us(a['p50_us'])} | {fmt_us(a['p99_us'])} | {a['errors']} |")
    md += ["", "## Cost per request", "",
           "Server CPU: the app process's utime+stime (`/proc/PID/stat`); Redis CPU: `used_cpu_sys + "
           "used_cpu_user`; commands run: every `INFO commandstats` call count (INFO excluded), which "
           "includes the commands Lua scripts run; all as before/after deltas over a run divided by "
           "its requests (64 logins per run included). Commands sent: what the clients sent, from "
           "`commands.csv` (a pass of its own with `MONITOR` on, whose script lines are left out; "
           "the round trips when nothing is pipelined).", "",
           "| stack | path | server CPU µs/req | Redis CPU µs/req | Redis commands sent/req | commands run/req (scripts' included) |",
           "|---|---|---|---|---|---|"]
    for p in paths:
        for s in stacks:
            if a := agg.get((s, p)):
                md.append(f"| {s} | {p} | {a['server_cpu']:.1f} | {a['redis_cpu']:.1f} | {a['cmds']:.2f} | "
                          f"{a['calls']:.2f} |")
    if mem:
        md += ["", "## Memory of one session", "",
               "After `/login` and one `/inc`: Redis `MEMORY USAGE key SAMPLES 0`.", "",
               "| stack | key bytes | value bytes | MEMORY USAGE |", "|---|---|---|---|"]
        md += [f"| {s} | {r['key_bytes']} | {r['value_bytes']} | {r['memory_usage_bytes']} B |" for s, r in mem.items()]
    md += ["", "## Stacks", ""] + [f"- `{s}`: {LABELS.get(s, s)}" for s in stacks]
    md += ["", "## Machine and versions", ""] + [f"- {k}: {v}" for k, v in machine.items()]
    (out / "results.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "parse-wrk" and len(sys.argv) == 10:
        parse_wrk(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)
