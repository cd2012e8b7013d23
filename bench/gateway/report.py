#!/usr/bin/python3
"""Turns bench/gateway/run.sh's raw records into the Markdown report (stdout).

Input: "# meta" then key=value lines, then records "SECTION TARGET REP key=value ...".
Every figure is the median over the repetitions; ratios compare medians from the same run.
"""
import math
import statistics
import sys
from collections import defaultdict

HTTP_PEERS = ["squid", "tinyproxy", "privoxy"]
TUNNEL_PEERS = ["squid", "tinyproxy", "privoxy", "dante", "microsocks"]
TUNNEL_TARGET_PEERS = ["squid", "dante", "microsocks"]  # the new-tunnel target
MEM_PEERS = ["microsocks", "tinyproxy", "squid", "dante"]
BULK_PEERS = ["squid", "dante"]


def load(path):
    meta, rec = {}, defaultdict(lambda: defaultdict(list))
    for line in open(path):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        parts = line.split(" ")
        if len(parts) >= 3 and parts[0] in ("http", "tunnel", "bulk", "tlsbulk", "body1m", "fwdbulk", "mem", "pool"):
            sec, tgt = parts[0], parts[1]
            for kv in parts[3:]:
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    rec[(sec, tgt)][k].append(v)
        elif "=" in line:
            k, v = line.split("=", 1)
            meta[k] = v
    return meta, rec


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def med(rec, sec, tgt, key):
    vals = [num(v) for v in rec.get((sec, tgt), {}).get(key, [])]
    vals = [v for v in vals if not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan


def per_cpu(rec, sec, tgt, count_key, secs_key=None):
    """Median over reps of count / proxy CPU seconds."""
    d = rec.get((sec, tgt), {})
    out = []
    for i, c in enumerate(d.get(count_key, [])):
        cpu = num(d.get("cpu_s", [None] * (i + 1))[i])
        if cpu and cpu > 0:
            out.append(num(c) / cpu)
    return statistics.median(out) if out else math.nan


def f(v, nd=0, unit=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if nd == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{nd}f}{unit}"


def ratio(a, b, nd=2):
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "–"
    return f"{a / b:.{nd}f}×"


def best(rec, sec, peers, key, lowest=False):
    vals = [(med(rec, sec, p, key), p) for p in peers]
    vals = [(v, p) for v, p in vals if not math.isnan(v)]
    if not vals:
        return math.nan, None
    return (min(vals) if lowest else max(vals))


def table_head(w, columns):
    """A Markdown table's header: the first column left-aligned, the figures right-aligned."""
    w("| " + " | ".join(columns) + " |")
    w("|---|" + "--:|" * (len(columns) - 1))


def main():
    meta, rec = load(sys.argv[1])
    reps = meta.get("settings", "")
    out = []
    w = out.append
    w("# exitpool gateway benchmark")
    w("")
    w(f"- {meta.get('date', '?')}, {meta.get('host', '?')}")
    w(f"- {meta.get('exitpool', '?')}")
    w(f"- peers: {meta.get('versions', '?')}")
    w(f"- settings: {reps}; total {meta.get('duration_s', '?')} s")
    w(f"- load average (1/5/15 min) at start: {meta.get('load_start', '?')}, at end: {meta.get('load_end', '?')}"
      " (client, origin and proxy share the same cores; other work on the machine distorts the numbers)")
    w("- figures are medians over the repetitions; ratios compare medians from this run; "
      "\"per CPU-s\" = requests (or tunnels) per second of the proxy's own CPU time (utime+stime of its process tree)")
    w("")

    # ---------------------------------------------------------------- 1. HTTP
    targets = [("nginx", "nginx direct (ceiling)"), ("exitpool", "exitpool --threads 2"),
               ("exitpool1", "exitpool --threads 1")] + [(p, p) for p in HTTP_PEERS]
    if any(("http", t) in rec for t, _ in targets):
        bp_rate, bp = best(rec, "http", HTTP_PEERS, "rate")
        bp_p99 = med(rec, "http", bp, "p99_ms") if bp else math.nan
        w("## 1. HTTP absolute-form requests (wrk -c 64 -t 2, keep-alive)")
        w("")
        w(f"Best peer: **{bp}**. Ratios are to its median.")
        w("")
        bp_cpu = max((per_cpu(rec, "http", p, "total") for p in HTTP_PEERS if ("http", p) in rec), default=math.nan)
        w("| target | req/s | p50 ms | p99 ms | non-2xx | socket errors | proxy CPU s | req per proxy CPU-s | "
          "req/s vs best peer | per CPU-s vs best peer | p99 vs best peer |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for t, label in targets:
            if ("http", t) not in rec:
                continue
            r = med(rec, "http", t, "rate")
            p99 = med(rec, "http", t, "p99_ms")
            w(f"| {label} | {f(r)} | {f(med(rec, 'http', t, 'p50_ms'), 2)} | {f(p99, 2)} | "
              f"{f(med(rec, 'http', t, 'non2xx'))} | {f(med(rec, 'http', t, 'sockerr'))} | "
              f"{f(med(rec, 'http', t, 'cpu_s'), 2)} | {f(per_cpu(rec, 'http', t, 'total'))} | {ratio(r, bp_rate)} | "
              f"{ratio(per_cpu(rec, 'http', t, 'total'), bp_cpu)} | {ratio(p99, bp_p99)} |")
        w("")
        if med(rec, "http", "tinyproxy", "sockerr") > 0:
            w("tinyproxy's socket errors are wrk's `read` count: tinyproxy closes the client connection after every "
              "response (no client keep-alive), so wrk reconnects per request; the responses themselves are 200s.")
            w("")

    # ---------------------------------------------------------------- 2. tunnels
    t_targets = [("direct", "direct, no proxy (ceiling)"), ("exitpool-connect", "exitpool CONNECT"),
                 ("exitpool-socks5", "exitpool SOCKS5"), ("exitpool1-connect", "exitpool --threads 1 CONNECT")] + \
        [(p, p + (" SOCKS5" if p in ("dante", "microsocks") else " CONNECT")) for p in TUNNEL_PEERS]
    if any(("tunnel", t) in rec for t, _ in t_targets):
        bp_rate, bp = best(rec, "tunnel", TUNNEL_PEERS, "rate")
        bt_rate, bt = best(rec, "tunnel", TUNNEL_TARGET_PEERS, "rate")
        bp_p99 = med(rec, "tunnel", bp, "p99_us") if bp else math.nan
        w("## 2. New tunnel per request (tunnel_load: connect, CONNECT/SOCKS5, one GET, close; 64 workers)")
        w("")
        w(f"Best peer: **{bp}**; best of squid, dante, microsocks (the target's reference): **{bt}**.")
        w("")
        bp_cpu = max((per_cpu(rec, "tunnel", p, "tunnels") for p in TUNNEL_PEERS if ("tunnel", p) in rec),
                     default=math.nan)
        w("| target | tunnels/s | p50 ms | p99 ms | errors | proxy CPU s | tunnels per proxy CPU-s | vs best peer | "
          "per CPU-s vs best peer | vs best of squid/dante/microsocks | p99 vs best peer |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for t, label in t_targets:
            if ("tunnel", t) not in rec:
                continue
            r = med(rec, "tunnel", t, "rate")
            p99 = med(rec, "tunnel", t, "p99_us")
            w(f"| {label} | {f(r)} | {f(med(rec, 'tunnel', t, 'p50_us') / 1000, 2)} | {f(p99 / 1000, 2)} | "
              f"{f(med(rec, 'tunnel', t, 'errors'))} | {f(med(rec, 'tunnel', t, 'cpu_s'), 2)} | "
              f"{f(per_cpu(rec, 'tunnel', t, 'tunnels'))} | {ratio(r, bp_rate)} | "
              f"{ratio(per_cpu(rec, 'tunnel', t, 'tunnels'), bp_cpu)} | {ratio(r, bt_rate)} | {ratio(p99, bp_p99)} |")
        w("")

    # ---------------------------------------------------------------- 3. bulk
    b_targets = [("direct", "direct loopback (ceiling)"), ("exitpool", "exitpool CONNECT"),
                 ("exitpool-socks5", "exitpool SOCKS5"), ("squid", "squid CONNECT"), ("dante", "dante SOCKS5")]
    if any(("bulk", t) in rec for t, _ in b_targets):
        direct = med(rec, "bulk", "direct", "mb_s")
        bp_rate, bp = best(rec, "bulk", BULK_PEERS, "mb_s")
        w("## 3. Bulk: one body through one tunnel (curl -o /dev/null)")
        w("")
        w("| target | MB/s | vs direct | vs best peer | proxy CPU s per GB |")
        w("|---|--:|--:|--:|--:|")
        for t, label in b_targets:
            if ("bulk", t) not in rec:
                continue
            r = med(rec, "bulk", t, "mb_s")
            size_gb = num(meta.get("settings", "BULK_MB=1024").split("BULK_MB=")[1].split()[0]) * 1.048576 / 1000
            cpu = med(rec, "bulk", t, "cpu_s")
            cpu_txt = f(cpu / size_gb, 2) if t != "direct" else f"{f(cpu / size_gb, 2)} (nginx)"
            w(f"| {label} | {f(r)} | {ratio(r, direct)} | {ratio(r, bp_rate)} | {cpu_txt} |")
        w("")

    # ---------------------------------------------------------------- 3c. bulk through a TLS exit
    tb_targets = [("exitpool@plain-exit", "exitpool, plain exit (squid)"),
                  ("exitpool@tls-exit", "exitpool, https:// exit (stunnel → squid, TLS 1.3)"),
                  ("squid-tls-parent", "squid, TLS parent (the same stunnel, TLS 1.2)")]
    if any(("tlsbulk", t) in rec for t, _ in tb_targets):
        plain = med(rec, "tlsbulk", "exitpool@plain-exit", "mb_s")
        peer = med(rec, "tlsbulk", "squid-tls-parent", "mb_s")
        size_gb = num(meta.get("settings", "BULK_MB=1024").split("BULK_MB=")[1].split()[0]) * 1.048576 / 1000
        for line in ("## 3c. Bulk through an https:// exit: one body through one CONNECT tunnel (curl -p -x)", "",
                     "The exit is squid, reached plainly or through stunnel in front of it; the peer is a second "
                     "squid whose only route is that stunnel port as a `cache_peer ... tls` parent (Debian's GnuTLS "
                     "squid relays CONNECT that way only with TLS 1.3 switched off). Exit chain CPU = stunnel + the "
                     "exit squid.", ""):
            w(line)
        table_head(w, ["target", "MB/s", "vs exitpool through the plain exit", "vs squid (TLS parent)",
                       "proxy CPU s per GB", "exit chain CPU s per GB"])
        rows = [(label, med(rec, "tlsbulk", t, "mb_s"), med(rec, "tlsbulk", t, "cpu_s"),
                 med(rec, "tlsbulk", t, "exit_cpu_s")) for t, label in tb_targets if ("tlsbulk", t) in rec]
        for label, r, cpu, exit_cpu in rows:
            w(f"| {label} | {f(r)} | {ratio(r, plain)} | {ratio(r, peer)} | {f(cpu / size_gb, 2)} | "
              f"{f(exit_cpu / size_gb, 2)} |")
        w("")

    # ---------------------------------------------------------------- 3b. plain-HTTP bodies
    f_targets = [("direct", "direct loopback (ceiling)"), ("exitpool", "exitpool"), ("squid", "squid"),
                 ("tinyproxy", "tinyproxy"), ("privoxy", "privoxy")]
    if any(("body1m", t) in rec or ("fwdbulk", t) in rec for t, _ in f_targets):
        peers = ["squid", "tinyproxy", "privoxy"]
        d1, db = med(rec, "body1m", "direct", "rate"), med(rec, "fwdbulk", "direct", "mb_s")
        bp1, _ = best(rec, "body1m", peers, "rate")
        bpb, _ = best(rec, "fwdbulk", peers, "mb_s")
        size_gb = num(meta.get("settings", "BULK_MB=1024").split("BULK_MB=")[1].split()[0]) * 1.048576 / 1000
        w("## 3b. Plain-HTTP bodies, forwarded (absolute-form GET, not tunnelled)")
        w("")
        w("1 MiB responses: wrk -c 16 -t 2, keep-alive. Big body: one BULK_MB GET with curl -x. exitpool moves "
          "bodies between plain sockets with splice(2).")
        w("")
        w("| target | 1 MiB req/s | vs direct | vs best peer | 1 MiB responses per proxy CPU-s | big body MB/s | "
          "vs direct | vs best peer | proxy CPU s per GB |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for t, label in f_targets:
            if ("body1m", t) not in rec and ("fwdbulk", t) not in rec:
                continue
            r1, rb = med(rec, "body1m", t, "rate"), med(rec, "fwdbulk", t, "mb_s")
            cpu_b = med(rec, "fwdbulk", t, "cpu_s")
            per_cpu_1m = per_cpu(rec, "body1m", t, "total")
            w(f"| {label} | {f(r1)} | {ratio(r1, d1)} | {ratio(r1, bp1)} | {f(per_cpu_1m)} | {f(rb)} | "
              f"{ratio(rb, db)} | {ratio(rb, bpb)} | {f(cpu_b / size_gb, 2)} |")
        w("")

    # ---------------------------------------------------------------- 4. memory
    m_targets = ["exitpool"] + sorted(t for (sec, t) in rec if sec == "mem" and t.startswith("exitpool@")) + MEM_PEERS
    if any(("mem", t) in rec for t in m_targets):
        bp_val, bp = best(rec, "mem", [p for p in MEM_PEERS if med(rec, "mem", p, "tunnels") > 0], "kib_per_tunnel",
                          lowest=True)
        w("## 4. Memory: RSS per idle open tunnel")
        w("")
        if meta.get("hold_note"):
            w(meta["hold_note"])
            w("")
        w(f"Best peer: **{bp}**.")
        w("")
        if any(t.startswith("exitpool@") for t in m_targets if ("mem", t) in rec):
            w("`exitpool@tls-exit`: the same gateway through an https:// exit (stunnel in front of squid), "
              "fewer tunnels (each costs the exit a TLS handshake); its ratio compares it with the peers' plain "
              "tunnels. `+6s`: the same tunnels, still held, 6 s later (once a burst of TLS handshakes is over, "
              "the gateway gives the pages they used back).")
            w("")
        w("KiB per tunnel = (PSS after − PSS before) / tunnels held, PSS summed over the proxy's processes "
          "(for a single process this is its RSS growth; for dante's several processes an RSS sum would count "
          "shared pages once per process). Each proxy is started fresh, sent one tunnel, then measured; "
          "every tunnel carried one GET before it went idle.")
        w("")
        w("| target | tunnels held | failed | processes | RSS before KiB | RSS after KiB | RSS KiB per tunnel | "
          "PSS KiB per tunnel | vs best peer |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for t in m_targets:
            if ("mem", t) not in rec:
                continue
            v = med(rec, "mem", t, "kib_per_tunnel")
            w(f"| {t} | {f(med(rec, 'mem', t, 'tunnels'))} | {f(med(rec, 'mem', t, 'failed'))} | "
              f"{f(med(rec, 'mem', t, 'procs'))} | "
              f"{f(med(rec, 'mem', t, 'rss_before_kib'))} | {f(med(rec, 'mem', t, 'rss_after_kib'))} | "
              f"{f(med(rec, 'mem', t, 'rss_kib_per_tunnel'), 1)} | {f(v, 1)} | "
              f"{ratio(v, bp_val)} |")
        w("")

    # ---------------------------------------------------------------- 5. scaling
    if ("http", "exitpool1") in rec or ("tunnel", "exitpool1-connect") in rec:
        w("## 5. Scaling: exitpool --threads 2 vs --threads 1 (same run)")
        w("")
        w("| test | 1 thread | 2 threads | 2 / 1 |")
        w("|---|--:|--:|--:|")
        a, b = med(rec, "http", "exitpool1", "rate"), med(rec, "http", "exitpool", "rate")
        w(f"| HTTP req/s | {f(a)} | {f(b)} | {ratio(b, a)} |")
        a2, b2 = med(rec, "tunnel", "exitpool1-connect", "rate"), med(rec, "tunnel", "exitpool-connect", "rate")
        w(f"| CONNECT tunnels/s | {f(a2)} | {f(b2)} | {ratio(b2, a2)} |")
        w("")
        w("On a 2-core machine the client (wrk / tunnel_load) and nginx run on the same two cores, so "
          "`--threads 2` cannot get a second core to itself: this ratio understates scaling.")
        w("")

    # ---------------------------------------------------------------- 6. pool
    pool_keys = [k for k in rec if k[0] == "pool"]
    if pool_keys:
        w("## 6. Pool scale (Google Benchmark over exitpool_core; bench/results/latest-pool_bench.txt)")
        w("")
        pb = rec.get(("pool", "bench"), {})
        exits = num(pb.get("exits", ["nan"])[0])
        w(f"Pool: {f(exits)} exits (http:// with user:pass, 200 countries, 3 types).")
        w("")
        w("| measurement | value |")
        w("|---|--:|")
        # Issue 14's rows: one request's pool step through a provider line vs an ordinary exit of the same scheme.
        rows = [("BM_pick_round_robin", "pick, round-robin"), ("BM_pick_random", "pick, random"),
                ("BM_pick_least_inflight", "pick, least-inflight"), ("BM_pick_fastest", "pick, fastest"),
                ("BM_pick_sticky", "pick, sticky session"),
                ("BM_pick_country_round_robin", "pick, country filter (1 of 200), round-robin"),
                ("BM_pick_country_sticky", "pick, country filter, sticky"),
                ("BM_begin_exit_rotate", "driver::begin, one ordinary http exit"),
                ("BM_begin_provider_rotate", "driver::begin, one provider line (fresh virtual exit)"),
                ("BM_begin_exit_sticky", "driver::begin, ordinary exit, 4096 sessions"),
                ("BM_begin_provider_sticky", "driver::begin, provider line, 4096 sessions")]
        for name, label in rows:
            v = med(rec, "pool", name, "us")
            if not math.isnan(v):
                w(f"| {label} | {f(v, 2)} µs |")
        bpe = num(pb.get("bytes_per_exit", ["nan"])[0])
        w(f"| memory per exit (pool_bench RSS delta / exits) | {f(bpe)} B |")
        for name, label in [("BM_parse_pool_text", "proto::parse_pool_text, whole file"),
                            ("BM_snapshot_build", "snapshot::build, fresh"),
                            ("BM_reload_unchanged", "parse + build against the previous snapshot (unchanged file)")]:
            v = med(rec, "pool", name, "us")
            if not math.isnan(v):
                w(f"| {label} | {f(v / 1e6, 2)} s |")
        rl = rec.get(("pool", "reload"), {})
        if rl:
            times = [num(x) for x in (rl.get("reload_s", [""])[0] or "").split(",") if x]
            rt = statistics.median(times) if times else math.nan
            w(f"| gateway start with the 1M-line file (until the port accepts) | {f(num(rl['startup_s'][0]), 2)} s |")
            w(f"| real reload: SIGHUP until \"pool reloaded\" in the log (median of {len(times)}) | {f(rt, 2)} s |")
            rb, rs = num(rl["rss_1m_kib"][0]), num(rl["rss_small_kib"][0])
            w(f"| gateway RSS with 1M exits vs 1 exit | {f(rb / 1024)} MiB vs {f(rs / 1024)} MiB "
              f"({f((rb - rs) * 1024 / exits if exits else math.nan)} B per exit) |")
            w(f"| gateway alive and accepting after the reloads | {'yes' if rl.get('serves_after', ['0'])[0] == '1' else 'NO'} |")
        w("")

    # ---------------------------------------------------------------- targets
    rows = []

    def target(name, value_txt, ok):
        rows.append(f"| {name} | {value_txt} | {'met' if ok else ('**missed**' if ok is not None else '–')} |")

    bp_rate, bp = best(rec, "http", HTTP_PEERS, "rate")
    if bp:
        r, p99, bp99 = med(rec, "http", "exitpool", "rate"), med(rec, "http", "exitpool", "p99_ms"), \
            med(rec, "http", bp, "p99_ms")
        target("HTTP req/s ≥ 1.5× best HTTP peer", f"{ratio(r, bp_rate)} of {bp}", r >= 1.5 * bp_rate)
        target("HTTP p99 ≤ best peer's", f"{f(p99, 2)} ms vs {f(bp99, 2)} ms ({bp})", p99 <= bp99)
    bt_rate, bt = best(rec, "tunnel", TUNNEL_TARGET_PEERS, "rate")
    if bt:
        r = max(med(rec, "tunnel", "exitpool-connect", "rate"), med(rec, "tunnel", "exitpool-socks5", "rate"))
        rc, rs = med(rec, "tunnel", "exitpool-connect", "rate"), med(rec, "tunnel", "exitpool-socks5", "rate")
        target("new tunnels/s ≥ 1.5× best of squid, dante, microsocks",
               f"CONNECT {ratio(rc, bt_rate)}, SOCKS5 {ratio(rs, bt_rate)} of {bt}", min(rc, rs) >= 1.5 * bt_rate)
    bc = max((per_cpu(rec, "tunnel", p, "tunnels") for p in TUNNEL_PEERS if ("tunnel", p) in rec), default=math.nan)
    if not math.isnan(bc):
        cc = per_cpu(rec, "tunnel", "exitpool-connect", "tunnels")
        cs = per_cpu(rec, "tunnel", "exitpool-socks5", "tunnels")
        target("tunnels per proxy CPU-s ≥ 1.5× best peer's (CPU per tunnel ≤ 2/3)",
               f"CONNECT {ratio(cc, bc)}, SOCKS5 {ratio(cs, bc)}", min(cc, cs) >= 1.5 * bc)
    direct = med(rec, "bulk", "direct", "mb_s")
    if not math.isnan(direct):
        r = med(rec, "bulk", "exitpool", "mb_s")
        target("bulk ≥ 0.9× direct loopback", f"{ratio(r, direct)}", r >= 0.9 * direct)
    tp = med(rec, "tlsbulk", "exitpool@plain-exit", "mb_s")
    if not math.isnan(tp):
        r = med(rec, "tlsbulk", "exitpool@tls-exit", "mb_s")
        target("bulk through a TLS exit ≥ 0.8× the same through a plain exit", ratio(r, tp), r >= 0.8 * tp)
    d1 = med(rec, "body1m", "direct", "rate")
    if not math.isnan(d1):
        r = med(rec, "body1m", "exitpool", "rate")
        target("1 MiB responses ≥ 0.85× direct", ratio(r, d1), r >= 0.85 * d1)
    db = med(rec, "fwdbulk", "direct", "mb_s")
    if not math.isnan(db):
        r = med(rec, "fwdbulk", "exitpool", "mb_s")
        target("forward GET of the big body ≥ 0.9× direct", ratio(r, db), r >= 0.9 * db)
    bm_val, bm = best(rec, "mem", [p for p in MEM_PEERS if med(rec, "mem", p, "tunnels") > 0], "kib_per_tunnel",
                      lowest=True)
    if bm:
        v = med(rec, "mem", "exitpool", "kib_per_tunnel")
        target("RSS (PSS) per idle tunnel ≤ 0.5× best peer", f"{f(v, 1)} KiB vs {f(bm_val, 1)} KiB ({bm}): {ratio(v, bm_val)}",
               v <= 0.5 * bm_val)
    a, b = med(rec, "http", "exitpool1", "rate"), med(rec, "http", "exitpool", "rate")
    if not math.isnan(a):
        target("2 threads ≥ 1.7× 1 thread (HTTP)", ratio(b, a), b >= 1.7 * a)
    picks = [med(rec, "pool", n, "us") for n in ("BM_pick_round_robin", "BM_pick_random", "BM_pick_least_inflight",
                                                  "BM_pick_fastest", "BM_pick_sticky", "BM_pick_country_round_robin",
                                                  "BM_pick_country_sticky")]
    picks = [p for p in picks if not math.isnan(p)]
    if picks:
        target("1M exits: selection < 1 µs", f"{f(min(picks), 2)} to {f(max(picks), 1)} µs per pick", max(picks) < 1)
        bpe = num(rec.get(("pool", "bench"), {}).get("bytes_per_exit", ["nan"])[0])
        target("1M exits: < 1 KiB per exit", f"{f(bpe)} B", bpe < 1024)
        rl = rec.get(("pool", "reload"), {})
        times = [num(x) for x in (rl.get("reload_s", [""])[0] or "").split(",") if x] if rl else []
        if times:
            rt = statistics.median(times)
            target("1M exits: reload < 2 s", f"{f(rt, 2)} s", rt < 2)
    if rows:
        w("## Targets (issues 6 and 16)")
        w("")
        w("| target | this run | |")
        w("|---|---|---|")
        out.extend(rows)
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
