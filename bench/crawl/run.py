#!/usr/bin/python3
"""bench/crawl/run.py — `exitpool crawl` against Scrapy on the generated site of the crawl tests, loopback only.

    bench/crawl/run.py                     ~20,000 pages over four hosts (PAGES=5000 per host)
    PAGES=2000 CONC=64 bench/crawl/run.py
    PEERS= bench/crawl/run.py               exitpool alone
    WORKERS=0 bench/crawl/run.py            without the shared-frontier run (default: 3 workers, one Redis)
    REPS=5 ONE_WORKER=1 PEERS= bench/crawl/run.py   exitpool only: 5 alternating rounds (medians), and a
                                            1-worker shared run (coordination cost without more processes)
    CRAWLEE_DIR=/tmp/c bench/crawl/run.py   also crawlee, installed there (cd /tmp/c && npm install crawlee@3)

The site is tests/integration/test_crawl.py's (cycles, relative/absolute links, <base>, redirects, 404s,
500s, slow pages, robots.txt per host), without its Crawl-delay (Scrapy ignores Crawl-delay: the two would
not do the same work). One nginx (1 worker); exitpool through 8 direct exits (127.0.0.41-48); Scrapy
(Debian's python3-scrapy) as a CrawlSpider with a LinkExtractor, ROBOTSTXT_OBEY on, the same concurrency;
Scrapy fetches more URLs than exitpool (its LinkExtractor follows rel=nofollow, and its URL canonicalisation
differs), so compare pages/s, not page counts.
Each under /usr/bin/time -v: pages/s (wall), CPU seconds (user+sys) and pages per CPU second, peak RSS; the
shared run's CPU is its workers' (wait4) plus redis-server's (/proc), against one process's (issue 13: "3 workers
on one Redis within 0.8x of one process's pages/s per core"). Writes bench/results/crawl-latest.md.
Not part of `make check`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import test_crawl as tc  # noqa: E402  (the site generator and its nginx config)
from helpers import free_port  # noqa: E402

BIN = os.environ.get("EXITPOOL_BIN", str(REPO / "build" / "exitpool"))
PAGES = int(os.environ.get("PAGES", "5000"))
CONC = int(os.environ.get("CONC", "64"))


def cpu_of(time_v: str) -> float:
    """User + system CPU seconds from /usr/bin/time -v's report."""
    return sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", time_v).group(1)) for k in ("User", "System"))


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv: list[str], cwd: Path) -> tuple[float, int, str]:
    t0 = time.monotonic()
    cp = subprocess.run(["/usr/bin/time", "-v", *argv], cwd=cwd, capture_output=True, timeout=3600,
                        env={k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")})
    wall = time.monotonic() - t0
    err = cp.stderr.decode(errors="replace")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    if cp.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{err[-3000:]}")
    return wall, rss, err


def main() -> None:
    tc.PAGES = {h: PAGES for h in tc.HOSTS}
    tc.ROBOTS["127.0.0.32"] = "User-agent: *\nDisallow: /hidden/\n"
    work = Path(tempfile.mkdtemp(prefix="exitpool-bench-crawl-"))
    work.chmod(0o755)
    nginx = None
    try:
        port = free_port()
        site = tc.Site(work / "site", port)
        site.generate()
        (work / "site" / tc.BAD / "p").mkdir(parents=True, exist_ok=True)
        d = work / "nginx"
        for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / t).mkdir(parents=True)
        conf = d / "nginx.conf"
        conf.write_text(tc.nginx_conf(d, work / "site", port).replace("access_log " + str(d) + "/access.log crawl;",
                                                                       "access_log off;"))
        nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-g",
                                  "daemon off; master_process on;"], start_new_session=True)
        time.sleep(1)
        seeds = tc.seeds_for(site)
        want = site.reachable(seeds)

        pool = work / "pool.txt"
        pool.write_text("".join(f"direct://127.0.0.{40 + i} id=d{i}\n" for i in range(1, 9)))

        def single() -> tuple[int, float, int, float]:
            out = work / "exitpool.jsonl"
            shutil.rmtree(work / "exitpool.jsonl.state", ignore_errors=True)
            out.unlink(missing_ok=True)
            wall, rss, err = timed([BIN, "crawl", "--pool", str(pool), "--seeds", *seeds, "--output", str(out),
                                    "--concurrency", str(CONC), "--per-host", str(CONC // 4), "--quiet"], work)
            return out.read_text().count("\n"), wall, rss, cpu_of(err)  # nginx's CPU not counted: the same for all

        def shared(workers: int) -> tuple[int, float, float, float]:
            """The same crawl by `workers` processes (each --threads 1) on one fresh Redis frontier:
            pages (merged), wall s, the workers' CPU s (wait4), redis-server's CPU s (/proc)."""
            rport = free_port()
            redis = subprocess.Popen([redis_bin, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL,
                                     start_new_session=True)
            try:
                time.sleep(0.5)
                for i in range(workers):
                    shutil.rmtree(work / f"w{i}.jsonl.state", ignore_errors=True)
                    (work / f"w{i}.jsonl").unlink(missing_ok=True)
                t0 = time.monotonic()
                procs = [subprocess.Popen([BIN, "crawl", "--pool", str(pool), "--seeds", *seeds, "--output",
                                           str(work / f"w{i}.jsonl"), "--concurrency", str(CONC // workers + 1),
                                           "--per-host", str(CONC // 4), "--threads", "1", "--progress-interval", "0.5",
                                           "--frontier", f"redis://127.0.0.1:{rport}"],
                                          stderr=open(work / f"w{i}.err", "wb"), cwd=work) for i in range(workers)]
                wcpu = 0.0
                for p in procs:
                    _, status, usage = os.wait4(p.pid, 0)  # bounded: each worker ends with the crawl
                    p.returncode = os.waitstatus_to_exitcode(status)
                    if p.returncode != 0:
                        raise SystemExit("a worker failed")
                    wcpu += usage.ru_utime + usage.ru_stime
                wwall = time.monotonic() - t0
                rcpu = proc_cpu(redis.pid)
            finally:
                redis.terminate()
                redis.wait()
            merged = subprocess.run([BIN, "crawl", "merge", *(str(work / f"w{i}.jsonl") for i in range(workers))],
                                    capture_output=True, timeout=600).stdout.count(b"\n")
            return merged, wwall, wcpu, rcpu

        def median(xs: list[float]) -> float:
            return sorted(xs)[len(xs) // 2]

        # REPS rounds, alternating (single, shared...): the machine's other load hits each alike;
        # medians of each figure.
        workers = int(os.environ.get("WORKERS", "3"))
        redis_bin = shutil.which("redis-server")
        counts = [workers, 1] if workers > 1 and os.environ.get("ONE_WORKER") else [workers]
        counts = [w for w in counts if w > 0 and redis_bin]
        runs: dict[str, list] = {"single": []}
        for _ in range(int(os.environ.get("REPS", "1"))):
            runs["single"].append(single())
            for w in counts:
                runs.setdefault(f"shared{w}", []).append(shared(w))
        got = runs["single"][0][0]
        wall = median([r[1] for r in runs["single"]])
        rss = int(median([r[2] for r in runs["single"]]))
        rows = [("exitpool crawl", got, wall, rss)]
        cpu = {"exitpool crawl": median([r[3] for r in runs["single"]])}
        cpu_note = ""
        for w in counts:
            rs = runs[f"shared{w}"]
            name = f"exitpool crawl, {w} worker{'s' if w > 1 else ''} on one Redis"
            rows.append((name, rs[0][0], median([r[1] for r in rs]), 0))
            wc, rc = median([r[2] for r in rs]), median([r[3] for r in rs])
            cpu[name] = median([r[2] + r[3] for r in rs])
            per = rs[0][0] / cpu[name]
            cpu_note += (f"{'' if not cpu_note else '; '}{w} worker{'s' if w > 1 else ''}: {wc:.2f} CPU s + "
                         f"redis-server {rc:.2f} CPU s; pages per CPU second {per:.0f} against one process's "
                         f"{got / cpu['exitpool crawl']:.0f}: {per / (got / cpu['exitpool crawl']):.2f}x")
        if len(runs["single"]) > 1:
            cpu_note += f" (medians of {len(runs['single'])} alternating rounds)"

        spider = work / "spider.py"
        spider.write_text(f'''
import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule

class Site(CrawlSpider):
    name = "site"
    allowed_domains = {tc.HOSTS!r}
    start_urls = {seeds!r}
    rules = (Rule(LinkExtractor(), callback="page", follow=True),)

    def parse_start_url(self, response):
        return self.page(response)

    def page(self, response):
        yield {{"url": response.url, "status": response.status}}

p = CrawlerProcess({{"LOG_LEVEL": "ERROR", "CONCURRENT_REQUESTS": {CONC},
    "CONCURRENT_REQUESTS_PER_DOMAIN": {CONC // 4}, "ROBOTSTXT_OBEY": True, "DOWNLOAD_DELAY": 0,
    "HTTPERROR_ALLOW_ALL": True, "TELNETCONSOLE_ENABLED": False,
    "FEEDS": {{"{work}/scrapy.jsonl": {{"format": "jsonlines"}}}}}})
p.crawl(Site)
p.start()
''')
        try:
            if os.environ.get("PEERS", "scrapy") != "scrapy":
                raise ImportError
            import scrapy  # noqa: F401
            swall, srss, serr = timed(["/usr/bin/python3", str(spider)], work)
            cpu["Scrapy CrawlSpider"] = cpu_of(serr)
            sgot = (work / "scrapy.jsonl").read_text().count("\n")
            rows.append(("Scrapy CrawlSpider", sgot, swall, srss))
        except ImportError:
            pass

        crawlee_dir = os.environ.get("CRAWLEE_DIR", "")
        if crawlee_dir and (Path(crawlee_dir) / "node_modules" / "crawlee").exists():
            # crawlee (npm) CheerioCrawler: same seeds, links to the four hosts, robots.txt respected,
            # the same concurrency, in-memory storage.
            script = Path(crawlee_dir) / "exitpool-bench.mjs"  # ESM resolves packages from the script's folder
            script.write_text(f"""
import {{ CheerioCrawler, Configuration }} from 'crawlee';
import fs from 'fs';
const out = fs.createWriteStream('{work}/crawlee.jsonl');
const crawler = new CheerioCrawler({{
  maxConcurrency: {CONC}, maxRequestRetries: 0, respectRobotsTxtFile: true,
  additionalHttpErrorStatusCodes: [], ignoreHttpErrorStatusCodes: [404, 500],
  async requestHandler({{ request, enqueueLinks }}) {{
    out.write(JSON.stringify({{ url: request.loadedUrl }}) + '\\n');
    await enqueueLinks({{ strategy: 'all', regexps: [/^http:\\/\\/127\\.0\\.0\\.3[1-4]:{port}\\//] }});
  }},
}}, new Configuration({{ persistStorage: false, logLevel: 'ERROR' }}));
await crawler.run({json.dumps(seeds)});
out.end();
""")
            cwall, crss, cerr = timed(["node", str(script)], Path(crawlee_dir))
            cpu["crawlee CheerioCrawler"] = cpu_of(cerr)
            cgot = (work / "crawlee.jsonl").read_text().count("\n")
            rows.append(("crawlee CheerioCrawler", cgot, cwall, crss))

        lines = [f"# exitpool crawl vs peers ({time.strftime('%Y-%m-%d')})", "",
                 f"Generated site: {len(want)} reachable allowed pages over 4 hosts ({PAGES} pages per host), "
                 f"concurrency {CONC}, per host {CONC // 4}; nginx 1 worker, loopback; {os.cpu_count()} CPUs.", "",
                 "| crawler | pages | wall s | pages/s | peak RSS MiB |", "|---|--:|--:|--:|--:|"]
        lines[-2:] = ["| crawler | pages | wall s | pages/s | CPU s | pages per CPU s | peak RSS MiB |",
                      "|---|--:|--:|--:|--:|--:|--:|"]
        for name, n, w, r in rows:
            c = f"{cpu[name]:.2f} | {n / cpu[name]:.0f}" if cpu.get(name) else " | "
            lines.append(f"| {name} | {n} | {w:.2f} | {n / w:.0f} | {c} | {r / 1024:.0f} |" if r else
                         f"| {name} | {n} | {w:.2f} | {n / w:.0f} | {c} | |")
        if cpu_note:
            lines += ["", "Shared crawl, CPU (workers' user+sys from wait4, Redis's from /proc): " + cpu_note]
        for peer in ("Scrapy", "crawlee"):
            peer_rows = [r for r in rows if r[0].startswith(peer)]
            if peer_rows:
                p_row = peer_rows[0]
                lines += ["", f"exitpool / {peer} pages/s: {(rows[0][1] / rows[0][2]) / (p_row[1] / p_row[2]):.1f}x, "
                              f"peak RSS {rows[0][3] / p_row[3]:.2f}x"]
        text = "\n".join(lines) + "\n"
        print(text)
        out = REPO / "bench" / "results" / "crawl-latest.md"
        out.write_text(text)
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait()
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
