"""`exitpool crawl` (issue 13, part 1): one process crawling a generated site on loopback.

The site: four hosts (nginx, IP-based virtual hosts on 127.0.0.31-34, one port), a few thousand
static pages with cycles, relative and absolute links, <base>, fragments, dot segments, cross-host
links, rel=nofollow, redirects (same host, cross host, a loop), 404s, 500s, slow pages, and a
robots.txt per host (Disallow/Allow, a group for our user agent, a Crawl-delay, one host without).
A fifth host (127.0.0.35) serves the hostile inputs. The test computes from the generated graph
which pages are reachable and allowed, and compares with the crawl's output and nginx's access log.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import random
import signal
import subprocess
import time
from collections import Counter, deque
from pathlib import Path

import pytest

from conftest import _need, _subdir
from helpers import exitpool_bin, free_port, start_process

HOSTS = ["127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34"]
BAD = "127.0.0.35"
OUT_OF_SCOPE = "127.0.0.36"  # nobody listens there: a request would fail, and must never be made
PAGES = {"127.0.0.31": 1500, "127.0.0.32": 24, "127.0.0.33": 1500, "127.0.0.34": 1500}
CRAWL_DELAY = 0.2  # 127.0.0.32's robots.txt
# Where /x/N redirects (302) to: never the Crawl-delay host, which stays small.
CROSS = {"127.0.0.31": "127.0.0.33", "127.0.0.32": "127.0.0.34", "127.0.0.33": "127.0.0.31",
         "127.0.0.34": "127.0.0.31"}
POOL = [f"direct://127.0.0.{20 + i} id=d{i}" for i in range(1, 5)]
GZ_ORPHANS = [f"gz{i}" for i in range(8)]  # 127.0.0.33's pages only its gzip sitemaps name

ROBOTS = {
    "127.0.0.31": "User-agent: *\nDisallow: /private/\nAllow: /private/open/\n",
    # Our own group wins over "*" (which would forbid everything); the delay is ours.
    "127.0.0.32": "User-agent: *\nDisallow: /\n\nUser-agent: exitpool-crawl\nDisallow: /hidden/\n"
                  f"Crawl-delay: {CRAWL_DELAY}\n",
    "127.0.0.33": "User-agent: *\nDisallow: /*.pdf$\n",
    # 127.0.0.34: none (404: everything allowed)
}


def allowed(host: str, path: str) -> bool:
    if host == "127.0.0.31":
        return not path.startswith("/private/") or path.startswith("/private/open/")
    if host == "127.0.0.32":
        return not path.startswith("/hidden/")
    if host == "127.0.0.33":
        return not path.endswith(".pdf")  # "Disallow: /*.pdf$": the query is part of the path
    return True


class Site:
    """The generated pages, and what each URL leads to."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.rng = random.Random(13)
        # url -> ("page", [link targets]) | ("redirect", target) | ("leaf", None)
        self.graph: dict[str, tuple[str, object]] = {}
        self.forbidden_paths: set[tuple[str, str]] = set()  # (host, path): must never be requested

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def page_path(self, host: str, i: int) -> str:
        return f"/p/{i}.html"

    def link_forms(self, host: str, target_path: str, here_dir: str) -> str:
        """One of many spellings of a link to target_path (absolute path) from a page in here_dir."""
        form = self.rng.randrange(7)
        name = target_path.rsplit("/", 1)[1]
        if form == 0 and target_path.startswith(here_dir):
            return target_path[len(here_dir):]
        if form == 1:
            return target_path
        if form == 2:
            return f"http://{host}:{self.port}{target_path}"
        if form == 3:
            return f"{target_path}#section-{self.rng.randrange(5)}"
        if form == 4:
            return f"/x/../{target_path.lstrip('/').replace('/', '/./', 1)}"
        if form == 5:
            return f"HTTP://{host}:{self.port}{target_path}"
        return f"  {target_path}\n"

    def generate(self) -> None:
        rng = self.rng
        for host in HOSTS:
            d = self.root / host
            for sub in ("p", "b", "private/open", "hidden", "doc", "nofollow"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            if host in ROBOTS:
                sitemap = "".join(f"Sitemap: {self.url(host, m)}\n"
                                  for m in ("/sitemap.xml", "/sitemap-gz.xml.gz", "/bomb.xml.gz")
                                  ) if host == "127.0.0.33" else ""
                (d / "robots.txt").write_text(ROBOTS[host] + sitemap)
            if host == "127.0.0.33":
                # Only reachable through the sitemaps (--sitemaps): an index, then a urlset.
                (d / "orphan").mkdir(exist_ok=True)
                for i in range(10):
                    (d / "orphan" / f"{i}.html").write_text('<a href="/p/1.html">x</a>')
                (d / "sitemap.xml").write_text(
                    '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                    f"<sitemap><loc>{self.url(host, '/sitemap-pages.xml')}</loc></sitemap>"
                    f"<sitemap><loc>{self.url(host, '/gz-as-xml.xml')}</loc></sitemap></sitemapindex>")
                # gzip sitemaps (nginx sends them as text/plain): a .xml.gz named by robots.txt, a
                # gzip body behind a .xml name (named by the index), and a bomb that inflates past
                # sitemaps.org's 50 MB (its first URL is read, the one past 50 MB is not).
                (d / "gzorphan").mkdir(exist_ok=True)
                for name in GZ_ORPHANS + ["bomb-early", "bomb-late"]:
                    (d / "gzorphan" / f"{name}.html").write_text("<html><body>from a gzip sitemap</body></html>")

                def urlset(names: list[str], filler: str = "") -> bytes:
                    urls = [f"<url><loc>{self.url(host, f'/gzorphan/{n}.html')}</loc></url>" for n in names]
                    return ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                            + filler.join(urls) + "</urlset>").encode()
                (d / "sitemap-gz.xml.gz").write_bytes(gzip.compress(urlset(GZ_ORPHANS[:5])))
                (d / "gz-as-xml.xml").write_bytes(gzip.compress(urlset(GZ_ORPHANS[5:])))
                (d / "bomb.xml.gz").write_bytes(gzip.compress(urlset(["bomb-early", "bomb-late"], " " * (60 << 20))))
                locs = [self.url(host, f"/orphan/{i}.html?a=1&amp;b=2") for i in range(10)]
                locs += [self.url(host, "/orphan/x.pdf"), f"http://{OUT_OF_SCOPE}:{self.port}/o.html"]
                (d / "sitemap-pages.xml").write_text(
                    '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                    + "".join(f"<url><loc>{u}</loc></url>" for u in locs) + "</urlset>")
            n = PAGES[host]
            for i in range(n):
                path = self.page_path(host, i)
                links: list[str] = []     # hrefs as written
                targets: list[str] = []   # normalised URLs the crawler must follow
                for _ in range(6 if n > 100 else 3):
                    j = rng.randrange(n + 3)  # a few past the end: 404s
                    tp = self.page_path(host, j)
                    links.append(self.link_forms(host, tp, "/p/"))
                    targets.append(self.url(host, tp))
                # a cross-host link (the Crawl-delay host gets few of them)
                other = rng.choice([h for h in HOSTS if h != host])
                if other != "127.0.0.32" or rng.random() < 0.2:
                    j = rng.randrange(PAGES[other])
                    links.append(self.url(other, self.page_path(other, j)))
                    targets.append(self.url(other, self.page_path(other, j)))
                extra = rng.randrange(20)
                if extra == 0:
                    links.append(f"/r/{rng.randrange(n)}")  # 301 to a page
                    targets.append(self.url(host, links[-1]))
                elif extra == 1:
                    links.append(f"/err/{i}")  # 500
                    targets.append(self.url(host, links[-1]))
                elif extra == 2 and i % 100 == 2:
                    links.append(f"/slow/{i}")
                    targets.append(self.url(host, links[-1]))
                elif extra == 3:
                    links.append(f"/b/{i}.html")  # a page with <base href="/p/">
                    targets.append(self.url(host, links[-1]))
                elif extra == 4:
                    links.append(f"/private/{i}.html")
                    targets.append(self.url(host, links[-1]))
                    links.append(f"/private/open/{i}.html")
                    targets.append(self.url(host, links[-1]))
                    links.append(f"/hidden/{i}.html")
                    targets.append(self.url(host, links[-1]))
                elif extra == 5:
                    links.append(f"/doc/{i}.pdf")
                    targets.append(self.url(host, links[-1]))
                    links.append(f"/doc/{i}.pdf?v=1")
                    targets.append(self.url(host, links[-1]))
                elif extra == 6:
                    links.append(f"/x/{i}")  # 302 to another host
                    targets.append(self.url(host, links[-1]))
                elif extra == 7:
                    links.append("/loop/a")
                    targets.append(self.url(host, links[-1]))
                body = "".join(f'<a href="{h}">link</a>\n' for h in links)
                # never followed: nofollow, an out-of-scope host, not http
                body += f'<a rel="nofollow" href="/nofollow/{i}.html">nf</a>\n'
                body += f'<a href="http://{OUT_OF_SCOPE}:{self.port}/p/{i}.html">out</a>\n'
                body += '<a href="mailto:x@example.invalid">m</a><a href="javascript:void(0)">j</a>\n'
                (d / "p" / f"{i}.html").write_text(f"<!doctype html><html><head><title>{host} {i}</title></head>"
                                                   f"<body>\n{body}</body></html>\n")
                self.graph[self.url(host, path)] = ("page", targets)
                # the <base> page: relative links resolve under /p/
                j = rng.randrange(n)
                (d / "b" / f"{i}.html").write_text(
                    f'<html><head><base href="/p/"></head><body><a href="{j}.html">b</a></body></html>')
                self.graph[self.url(host, f"/b/{i}.html")] = ("page", [self.url(host, f"/p/{j}.html")])
                for sub, suffix in (("private", ".html"), ("private/open", ".html"), ("hidden", ".html"),
                                    ("nofollow", ".html")):
                    (d / sub / f"{i}{suffix}").write_text("<html><body>leaf</body></html>")
                    self.graph[self.url(host, f"/{sub}/{i}{suffix}")] = ("page", [])
                (d / "doc" / f"{i}.pdf").write_bytes(b"%PDF-1.4 not really")
                self.graph[self.url(host, f"/doc/{i}.pdf")] = ("leaf", None)
                self.graph[self.url(host, f"/doc/{i}.pdf?v=1")] = ("leaf", None)
                self.graph[self.url(host, f"/r/{i}")] = ("redirect", self.url(host, f"/p/{i}.html"))
                self.graph[self.url(host, f"/x/{i}")] = ("redirect", self.url(CROSS[host], f"/p/{i}.html"))
                self.graph[self.url(host, f"/err/{i}")] = ("leaf", None)
                self.graph[self.url(host, f"/slow/{i}")] = ("page", [self.url(host, "/p/1.html")])
            self.graph[self.url(host, "/loop/a")] = ("redirect", self.url(host, "/loop/b"))
            self.graph[self.url(host, "/loop/b")] = ("redirect", self.url(host, "/loop/a"))

    def reachable(self, seeds: list[str]) -> set[str]:
        """What the crawler must fetch: breadth-first from the seeds, robots.txt applied."""
        seen = set(seeds)
        todo = deque(seeds)
        fetched = set()
        while todo:
            u = todo.popleft()
            rest = u.split("://", 1)[1]
            host = rest.split(":", 1)[0]
            path = "/" + rest.split("/", 1)[1]
            if not allowed(host, path):
                continue
            fetched.add(u)
            kind, what = self.graph.get(u, ("leaf", None))  # not in the graph: a 404
            nexts = what if kind == "page" else [what] if kind == "redirect" else []
            for t in nexts:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return fetched


def nginx_conf(d: Path, site_root: Path, port: int) -> str:
    servers = []
    for host in HOSTS + [BAD]:
        servers.append(f"""
    server {{
        listen {host}:{port};
        root {site_root}/{host};
        location ~ ^/r/(\\d+)$ {{ return 301 /p/$1.html; }}
        location ~ ^/x/(\\d+)$ {{ return 302 http://{CROSS.get(host, host)}:{port}/p/$1.html; }}
        location = /loop/a {{ return 301 /loop/b; }}
        location = /loop/b {{ return 301 http://{host}:{port}/loop/a; }}
        location /err/ {{ return 500; }}
        location /slow/ {{ default_type text/html; echo_sleep 0.3; echo '<a href="/p/1.html">one</a>'; }}
        location /stall/ {{ default_type text/html; echo_sleep 5; echo 'late'; }}
        location /doc/ {{ default_type application/pdf; }}
    }}""")
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log crit;
events {{ worker_connections 4096; }}
http {{
    log_format crawl '$msec $request_time $server_addr $request_uri $status';
    access_log {d}/access.log crawl;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ text/html html; }}
    default_type text/plain;
    keepalive_requests 100000;
    {''.join(servers)}
}}
"""


@pytest.fixture(scope="module")
def site(lab_dir):
    nginx = _need("nginx")
    d = _subdir(lab_dir, "crawl-nginx")
    for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        _subdir(d, t)
    port = free_port()
    root = d / "site"
    s = Site(root, port)
    s.generate()
    bad = root / BAD
    (bad / "p").mkdir(parents=True, exist_ok=True)
    s.nginx_dir = d
    conf = d / "nginx.conf"
    conf.write_text(nginx_conf(d, root, port))
    svc = start_process("crawl nginx", [nginx, "-c", str(conf), "-g", "daemon off; master_process on;"],
                        d / "stdout.log", port, host=HOSTS[0])
    svc.wait_ready()
    s.svc = svc
    yield s
    svc.stop()


def access_log(site: Site) -> list[tuple[float, str, str, int]]:
    out = []
    for line in (site.nginx_dir / "access.log").read_text().splitlines():
        t, took, addr, uri, status = line.split(" ")
        out.append((float(t) - float(took), addr, uri, int(status)))  # when the request began
    return out


def no_proxy_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def crawl_argv(d: Path, *args: str) -> list[str]:
    pool = d / "pool.txt"
    pool.write_text("".join(line + "\n" for line in POOL))
    return [str(exitpool_bin()), "crawl", "--pool", str(pool), "--output", str(d / "out.jsonl"), "--threads", "2",
            "--concurrency", "64", "--per-host", "8", "--timeout", "10", "--progress-interval", "1", *args]


def results(d: Path) -> list[dict]:
    return [json.loads(line) for line in (d / "out.jsonl").read_text().splitlines()]


def check_exactly(site: Site, lines: list[dict], want: set[str]) -> None:
    urls = [r["url"] for r in lines]
    dupes = {u for u in urls if urls.count(u) > 1} if len(urls) != len(set(urls)) else set()
    assert not dupes, f"fetched twice: {sorted(dupes)[:10]}"
    got = set(urls)
    assert got == want, (f"missing {len(want - got)}: {sorted(want - got)[:10]}; "
                         f"extra {len(got - want)}: {sorted(got - want)[:10]}")


def seeds_for(site: Site) -> list[str]:
    return [site.url(h, "/p/0.html") for h in HOSTS]


def test_crawl_gets_exactly_the_reachable_allowed_pages(site, tmp_path):
    start = time.time()
    log_before = len(access_log(site))
    seeds = seeds_for(site)
    (tmp_path / "seeds.txt").write_text("# seeds\n" + "\n".join(seeds) + "\n")
    t0 = time.monotonic()
    cp = subprocess.run(crawl_argv(tmp_path, "--seeds", str(tmp_path / "seeds.txt")), capture_output=True,
                        timeout=120, env=no_proxy_env())
    elapsed = time.monotonic() - t0
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == 0, err
    lines = results(tmp_path)
    want = site.reachable(seeds)
    assert len(want) > 3000
    check_exactly(site, lines, want)
    print(f"\ncrawl: {len(lines)} pages in {elapsed:.2f} s ({len(lines) / elapsed:.0f} pages/s)\n{err[-600:]}")

    by_url = {r["url"]: r for r in lines}
    # Statuses as the site has them; redirects recorded with their target; 500s and 404s recorded.
    p = site.port
    assert by_url[f"http://127.0.0.31:{p}/p/0.html"]["status"] == 200
    assert by_url[f"http://127.0.0.31:{p}/p/0.html"]["depth"] == 0
    loops = [u for u in want if u.endswith("/loop/a")]
    for u in loops:
        assert by_url[u]["status"] == 301 and by_url[u]["redirect"].endswith("/loop/b")
    assert any(r["status"] == 404 for r in lines)
    assert any(r["status"] == 500 for r in lines)
    assert any(r["status"] == 302 and r["redirect"].startswith("http://127.0.0.3") for r in lines)
    assert all(r["error"] is None for r in lines), [r for r in lines if r["error"]][:3]

    # nginx saw nothing it should not have: no disallowed path, no nofollow, no out-of-scope host.
    log = access_log(site)[log_before:]
    for t, addr, uri, status in log:
        assert allowed(addr, uri), f"disallowed request {addr} {uri}"
        assert not uri.startswith("/nofollow/"), uri
    assert all(addr in HOSTS for _, addr, _, _ in log)
    robots_fetches = [(addr, uri) for _, addr, uri, _ in log if uri == "/robots.txt"]
    assert sorted(robots_fetches) == sorted((h, "/robots.txt") for h in HOSTS)
    # Every page request nginx saw is in the output once (robots.txt apart).
    assert len([1 for _, _, uri, _ in log if uri != "/robots.txt"]) == len(lines)

    # The Crawl-delay host: never two requests closer than its delay. Start times as nginx saw
    # them ($msec minus $request_time): they include nginx's own scheduling delay, which on a
    # loaded machine reaches some milliseconds, hence 10% slack on single gaps.
    times = sorted(t for t, addr, uri, _ in log if addr == "127.0.0.32" and uri != "/robots.txt")
    assert len(times) >= 15
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert sorted(gaps)[len(gaps) // 2] >= CRAWL_DELAY, gaps
    assert min(gaps) >= CRAWL_DELAY * 0.9, f"Crawl-delay broken: min gap {min(gaps):.4f}"
    assert time.time() - start < 90


def test_kill_9_and_resume_gives_each_page_once(site, tmp_path):
    seeds = seeds_for(site)
    warc = tmp_path / "out.warc.gz"
    # --queue-memory 200: most of the queue waits in the spill file, which a resume starts afresh.
    argv = crawl_argv(tmp_path, "--seeds", *seeds, "--concurrency", "8", "--per-host", "2",
                      "--fsync-interval", "0.05", "--warc", str(warc), "--queue-memory", "200")
    out = tmp_path / "out.jsonl"
    want = site.reachable(seeds)
    kills = 0
    for target in (len(want) // 4, len(want) // 2):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=no_proxy_env(), start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= target:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the crawl ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    cp = subprocess.run(argv, capture_output=True, timeout=120, env=no_proxy_env())
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == 0, err
    assert "resuming" in err
    assert int(re.search(r"(\d+) URLs spilled to disk", err).group(1)) > 0, err
    assert not (tmp_path / "out.jsonl.spill").exists()
    lines = results(tmp_path)
    check_exactly(site, lines, want)
    assert kills == 2
    # The WARC too: one response record per line (robots.txt has neither), where the line says.
    with gzip.open(warc, "rb") as f:
        records = f.read().split(b"WARC/1.1\r\n")[1:]
    targets = [re.search(rb"WARC-Target-URI: (\S+)", r).group(1).decode() for r in records
               if b"WARC-Type: response" in r]
    assert len(targets) == len(set(targets)) == len(lines)
    assert set(targets) == {r["url"] for r in lines}
    assert all(r.get("warc_offset") is not None for r in lines)


def test_bad_input(site, tmp_path):
    p = site.port
    bad = site.root / BAD
    # robots.txt: 10 MB of garbage with a Disallow for /p/blocked past 500 KiB (not read)
    garbage = bytes((i * 7919 + 13) % 256 for i in range(4096)) * (10 * 256)
    (bad / "robots.txt").write_bytes(b"User-agent: *\nDisallow: /p/early\n" + garbage + b"\nDisallow: /p/late\n")
    # a 50 MB page whose links come after what is parsed, a page with 1,000,000 links
    filler = "<p>" + "x" * 1000 + "</p>\n"
    with open(bad / "p" / "huge.html", "w") as f:
        f.write('<a href="/p/near.html">near</a>\n')
        for _ in range(50 * 1024):
            f.write(filler)
        f.write('<a href="/p/far.html">far</a>\n')
    with open(bad / "p" / "many.html", "w") as f:
        f.write("<html><body>\n")
        for i in range(1_000_000):
            f.write(f'<a href="/m/{i}">x</a>\n')
    # 4 MiB of nested elements (gumbo's time grows with depth x elements: uncut, hours)
    (bad / "p" / "deep.html").write_text('<a href="/p/near.html">n</a>' + "<div>" * (4 * 1024 * 1024 // 5 - 10))
    for name in ("near", "far", "early", "late", "index"):
        (bad / "p" / f"{name}.html").write_text(
            '<a href="/p/huge.html">h</a><a href="/p/many.html">m</a><a href="/p/early.html">e</a>'
            '<a href="/p/late.html">l</a><a href="/loop/a">loop</a><a href="/p/deep.html">d</a>')
    os.makedirs(bad / "m", exist_ok=True)

    # An unreadable seeds file: a clear error, exit 2.
    cp = subprocess.run(crawl_argv(tmp_path, "--seeds", str(tmp_path / "missing.txt")), capture_output=True,
                        timeout=30, env=no_proxy_env())
    assert cp.returncode == 2
    assert b"missing.txt: cannot read it" in cp.stderr
    # Only malformed seeds: exit 2.
    cp = subprocess.run(crawl_argv(tmp_path, "--seeds", "htp://nope", "http://"), capture_output=True, timeout=30,
                        env=no_proxy_env())
    assert cp.returncode == 2, cp.stderr
    assert b"skipped" in cp.stderr and b"no crawlable seed" in cp.stderr

    # A malformed seed among good ones is skipped; the crawl goes on through the rest.
    t0 = time.monotonic()
    cp = subprocess.run(crawl_argv(tmp_path, "--seeds", "http://[broken", f"http://{BAD}:{p}/p/index.html",
                                   "--max-links", "1000", "--max-html", "1000000", "--max-depth", "1"),
                        capture_output=True, timeout=120, env=no_proxy_env())
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == 0, err
    assert "http://[broken" in err and "skipped" in err
    by_url = {r["url"]: r for r in results(tmp_path)}
    base = f"http://{BAD}:{p}"
    # robots.txt: the early rule holds, the one past 500 KiB is not read.
    assert f"{base}/p/early.html" not in by_url
    assert by_url[f"{base}/p/late.html"]["status"] == 200
    huge = by_url[f"{base}/p/huge.html"]
    assert huge["status"] == 200 and huge["links_truncated"] is True
    assert huge["body_size"] >= 50 * 1024 * 1000
    assert f"{base}/p/near.html" in huge["links"] and f"{base}/p/far.html" not in huge["links"]
    many = by_url[f"{base}/p/many.html"]
    assert many["links_truncated"] is True and len(many["links"]) == 1000
    # --max-depth 1: the links of depth-1 pages are recorded, not followed
    assert not any(u.startswith(f"{base}/m/") for u in by_url)
    deep = by_url[f"{base}/p/deep.html"]
    assert deep["links_truncated"] is True and deep["links"] == [f"{base}/p/near.html"]
    assert by_url[f"{base}/loop/a"]["redirect"] == f"{base}/loop/b"
    assert time.monotonic() - t0 < 60

    # The redirect loop: each side fetched once, recorded, and the crawl ends.
    (tmp_path / "loop").mkdir()
    cp = subprocess.run(crawl_argv(tmp_path / "loop", "--seeds", f"{base}/loop/a"), capture_output=True, timeout=60,
                        env=no_proxy_env())
    assert cp.returncode == 0, cp.stderr
    loop = results(tmp_path / "loop")
    assert sorted(r["url"] for r in loop) == [f"{base}/loop/a", f"{base}/loop/b"]
    assert all(r["status"] == 301 for r in loop)


def test_sitemaps_from_robots_txt(site, tmp_path):
    """--sitemaps: robots.txt names a sitemap index, the index a urlset; its URLs are crawled at depth 0
    (robots.txt and scope still apply); without the flag they are not (the first test's exact set).
    gzip sitemaps are inflated (by their bytes, not their name or Content-Type), a gzip bomb only to
    50 MB: what came before the bound is read, the rest is not, and the cut is reported."""
    seed = site.url("127.0.0.33", "/p/0.html")
    cp = subprocess.run(crawl_argv(tmp_path, "--seeds", seed, "--sitemaps", "--max-depth", "0"),
                        capture_output=True, timeout=60, env=no_proxy_env())
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == 0, err
    got = {r["url"] for r in results(tmp_path)}
    gz = {site.url("127.0.0.33", f"/gzorphan/{n}.html") for n in GZ_ORPHANS + ["bomb-early"]}
    assert got == {seed} | {site.url("127.0.0.33", f"/orphan/{i}.html?a=1&b=2") for i in range(10)} | gz
    assert re.search(r"sitemap \S*/bomb\.xml\.gz: gzip too large: inflates to more than 52428800 bytes", err), err


# ------------------------------------------------------------------------- shared frontier (Redis)

def start_worker(d: Path, seeds: list[str], redis_url: str, name: str, *args: str) -> subprocess.Popen:
    d.mkdir(exist_ok=True)
    argv = crawl_argv(d, "--seeds", *seeds, "--frontier", redis_url, "--crawl-name", name, "--lease", "2s",
                      "--fsync-interval", "0.1", "--concurrency", "16", "--per-host", "4", *args)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(d / "stderr.log", "ab"), env=no_proxy_env(), start_new_session=True)


def merged_results(dirs: list[Path]) -> list[dict]:
    merged = subprocess.run([str(exitpool_bin()), "crawl", "merge", *(str(d / "out.jsonl") for d in dirs)],
                            capture_output=True, timeout=60)
    assert merged.returncode == 0, merged.stderr
    return [json.loads(line) for line in merged.stdout.decode().splitlines()]


def crawl_status(redis_url: str, name: str) -> str:
    cp = subprocess.run([str(exitpool_bin()), "crawl", "status", "--frontier", redis_url, "--crawl-name", name],
                        capture_output=True, timeout=10)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.decode()


def test_redis_restart_with_aof_mid_crawl(site, tmp_path, start_redis):
    """Redis killed mid-crawl: the workers pause (none crashes); started again from its AOF, the
    crawl continues and the merged output is exactly the reachable allowed pages."""
    redis = start_redis(aof=True)
    seeds = seeds_for(site)
    want = site.reachable(seeds)
    dirs = [tmp_path / f"w{i}" for i in range(3)]
    procs = [start_worker(d, seeds, redis.url, "aof") for d in dirs]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sum((d / "out.jsonl").read_bytes().count(b"\n") for d in dirs if (d / "out.jsonl").exists()) >= 1500:
            break
        time.sleep(0.01)
    redis.kill()
    time.sleep(2.5)
    assert all(p.poll() is None for p in procs), "a worker died with Redis"
    redis.start()
    for p, d in zip(procs, dirs):
        assert p.wait(timeout=120) == 0, (d / "stderr.log").read_text()[-2000:]
    assert any("pausing" in (d / "stderr.log").read_text() for d in dirs)
    check_exactly(site, merged_results(dirs), want)
    assert "queued 0  leased 0" in crawl_status(redis.url, "aof")


def test_poison_url_goes_to_the_dead_letter_list(site, tmp_path, start_redis):
    """A URL whose worker dies every time: after --max-deliveries expired leases it is dead-lettered,
    and the crawl ends."""
    redis = start_redis()
    seed = f"http://{BAD}:{site.port}/stall/poison"
    for i in range(3):
        p = start_worker(tmp_path / f"k{i}", [seed], redis.url, "poison", "--lease", "1s", "--max-deliveries", "3")
        time.sleep(1.0)  # robots.txt, then the 5 s page is in flight
        assert p.poll() is None
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        time.sleep(1.2)  # its lease expires
    last = start_worker(tmp_path / "last", [seed], redis.url, "poison", "--lease", "1s", "--max-deliveries", "3")
    assert last.wait(timeout=30) == 0, (tmp_path / "last" / "stderr.log").read_text()
    status = crawl_status(redis.url, "poison")
    assert "dead-lettered 1" in status and "queued 0  leased 0" in status, status
    assert seed in redis.cli("LRANGE", "exitpool:crawl:poison:dead", "0", "-1")


def test_three_workers_share_one_frontier_one_killed(site, tmp_path, start_redis):
    """Three workers on one Redis; one is kill -9'd mid-crawl and started again. The merged
    output is exactly the reachable allowed pages; every worker exits 0 when nothing is queued
    or leased; nothing disallowed reaches nginx; the Crawl-delay host keeps its delay."""
    redis = start_redis()
    seeds = seeds_for(site)
    want = site.reachable(seeds)
    log_before = len(access_log(site))
    dirs = [tmp_path / f"w{i}" for i in range(3)]
    procs = [start_worker(d, seeds, redis.url, "t3") for d in dirs]
    victim = dirs[1] / "out.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if victim.exists() and victim.read_bytes().count(b"\n") >= 400:
            break
        time.sleep(0.01)
    os.killpg(procs[1].pid, signal.SIGKILL)
    procs[1].wait()
    procs[1] = start_worker(dirs[1], seeds, redis.url, "t3")
    for p, d in zip(procs, dirs):
        assert p.wait(timeout=120) == 0, (d / "stderr.log").read_text()[-2000:]

    status = crawl_status(redis.url, "t3")
    assert "queued 0  leased 0" in status, status
    lines = merged_results(dirs)
    check_exactly(site, lines, want)
    total = sum((d / "out.jsonl").read_bytes().count(b"\n") for d in dirs)
    per_worker = [(d / "out.jsonl").read_bytes().count(b"\n") for d in dirs]
    print(f"\n3 workers: {per_worker} lines, {total - len(lines)} duplicate fetches; {status}")
    # Duplicates come only from the killed worker's leases (at most 2 x --concurrency held).
    assert total - len(lines) <= 32
    # Every worker does a fair part: a worker that frees a host's slot does not take it back
    # before the others can ask (the release goes after the take in its round).
    assert min(per_worker) > total / 10, per_worker

    log = access_log(site)[log_before:]
    for t, addr, uri, status_code in log:
        assert allowed(addr, uri), f"disallowed request {addr} {uri}"
        assert not uri.startswith("/nofollow/"), uri
    times = sorted(t for t, addr, uri, _ in log if addr == "127.0.0.32" and uri != "/robots.txt")
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= CRAWL_DELAY * 0.9, f"Crawl-delay broken across workers: min gap {min(gaps):.4f}"


def test_max_pages_is_one_budget_for_all_workers(site, tmp_path, start_redis):
    """--max-pages with --frontier: one budget in Redis, counted where work is taken (one Lua script):
    two workers fetch exactly 50 pages between them, each once, then both exit 0 although pages are
    still queued; `crawl status` shows the budget spent. The budget is the first worker's: the second,
    started with --max-pages 500 once the first has set 50, says so and follows it."""
    redis = start_redis()
    seeds = seeds_for(site)
    want = site.reachable(seeds)
    dirs = [tmp_path / f"w{i}" for i in range(2)]
    procs = [start_worker(dirs[0], seeds, redis.url, "budget", "--max-pages", "50")]
    deadline = time.monotonic() + 20
    while "of --max-pages 50" not in crawl_status(redis.url, "budget") and time.monotonic() < deadline:
        time.sleep(0.05)
    procs.append(start_worker(dirs[1], seeds, redis.url, "budget", "--max-pages", "500"))
    for p, d in zip(procs, dirs):
        assert p.wait(timeout=60) == 0, (d / "stderr.log").read_text()[-2000:]
    lines = merged_results(dirs)
    per_worker = [(d / "out.jsonl").read_bytes().count(b"\n") for d in dirs]
    # Exactly: no worker died, so no lease was handed out twice, and no page was dropped by
    # robots.txt without giving its place back.
    assert len(lines) == 50 and sum(per_worker) == 50, per_worker
    assert {r["url"] for r in lines} <= want
    status = crawl_status(redis.url, "budget")
    assert "pages handed out 50 of --max-pages 50 (spent" in status, status
    assert "leased 0" in status and "queued 0 " not in status, status
    assert "--max-pages 500 differs from this crawl's 50 (the first worker's): using 50" in \
        (dirs[1] / "stderr.log").read_text()


def test_queue_spills_to_disk_past_queue_memory(site, tmp_path):
    """A crawl that discovers 400,000 URLs and fetches 40 (--max-pages): with --queue-memory 20000 the
    queue waits in OUTPUT.spill, not in memory: the peak RSS is well below the same crawl's with
    everything in memory (--queue-memory 0); the spill file is gone at the end."""
    wide = site.root / BAD / "wide"
    wide.mkdir(parents=True, exist_ok=True)
    for i in range(40):
        (wide / f"{i}.html").write_text(
            "<html><body>\n" + "".join(f'<a href="/w/{i}/{j}/a/longer/path/to/the/page.html">x</a>\n'
                                       for j in range(10_000)) + "</body></html>\n")
    seeds = [f"http://{BAD}:{site.port}/wide/{i}.html" for i in range(40)]

    def crawl(d: Path, *args: str) -> tuple[int, str]:
        d.mkdir()
        proc = subprocess.Popen(crawl_argv(d, "--seeds", *seeds, "--ignore-robots", "--max-depth", "1",
                                           "--max-pages", "40", *args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=no_proxy_env())
        # The peak RSS from /proc (VmHWM: the process's own high-water mark; wait4's ru_maxrss would
        # count this test's memory, which the child had before its exec).
        hwm = 0
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                hwm = max(hwm, int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)))
            except (OSError, AttributeError):
                pass
            time.sleep(0.01)
        err = proc.communicate(timeout=10)[1].decode(errors="replace")
        assert proc.returncode == 0, err
        assert len(results(d)) == 40
        assert not (d / "out.jsonl.spill").exists()
        return hwm, err  # KiB

    spill_rss, err = crawl(tmp_path / "spill", "--queue-memory", "20000")
    spilled = int(re.search(r"(\d+) URLs spilled to disk", err).group(1))
    assert spilled >= 370_000, err
    memory_rss, err = crawl(tmp_path / "memory", "--queue-memory", "0")
    assert "400040 URLs discovered" in err, err
    assert re.search(r" 0 URLs spilled to disk", err), err
    print(f"\npeak RSS with the queue spilled: {spill_rss / 1024:.0f} MiB, in memory: {memory_rss / 1024:.0f} MiB")
    assert spill_rss < memory_rss * 0.7, (spill_rss, memory_rss)


def test_a_full_disk_under_the_spill_file_is_fatal_and_resumable(site, tmp_path):
    """The spill file cannot be written (it is /dev/full: ENOSPC on the first block): the crawl stops
    with exit 1 (fatal, as a fetch whose output fails), names the file and the reason, prints its
    summary, and loses nothing: run again on a good disk, it ends with every reachable page once."""
    seeds = seeds_for(site)
    want = site.reachable(seeds)
    argv = crawl_argv(tmp_path, "--seeds", *seeds, "--concurrency", "8", "--per-host", "2",
                      "--queue-memory", "100")
    spill = tmp_path / "out.jsonl.spill"
    spill.symlink_to("/dev/full")
    cp = subprocess.run(argv, capture_output=True, timeout=120, env=no_proxy_env())
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == 1, err
    assert re.search(r"crawl: fatal: spill file \S*out\.jsonl\.spill: cannot write it: No space left on device",
                     err), err
    assert "results in" in err  # the summary
    first = len(results(tmp_path))
    assert 0 < first < len(want)
    spill.unlink(missing_ok=True)
    cp = subprocess.run(argv, capture_output=True, timeout=180, env=no_proxy_env())
    err = cp.stderr.decode(errors="replace")
    assert cp.returncode == 0, err
    check_exactly(site, results(tmp_path), want)


def test_a_worker_with_nothing_left_syncs_at_once(site, tmp_path, start_redis):
    """A shared worker acknowledges a page only once its line is durable, at the next --fsync-interval.
    When nothing may still go out and every lease it holds is fetched, it fsyncs at once: with
    --fsync-interval 60, a 30-page crawl still ends in seconds, every page acknowledged."""
    redis = start_redis()
    d = tmp_path / "w"
    t0 = time.monotonic()
    p = start_worker(d, seeds_for(site), redis.url, "prompt", "--max-pages", "30", "--fsync-interval", "60")
    assert p.wait(timeout=40) == 0, (d / "stderr.log").read_text()[-2000:]
    took = time.monotonic() - t0
    assert took < 20, f"the crawl waited {took:.1f} s for its fsync interval"
    assert (d / "out.jsonl").read_bytes().count(b"\n") == 30
    status = crawl_status(redis.url, "prompt")
    assert "leased 0" in status and "done 30" in status, status


def test_workers_share_each_hosts_robots_txt(site, tmp_path, start_redis):
    """A host's robots.txt is read once for the whole fleet: the worker that fetches it publishes the
    answer (kept for the robots.txt cache's TTL), the others ask Redis before asking the host. Three
    workers, four hosts: nginx sees each robots.txt once, and the workers say how many they read from
    the fleet."""
    redis = start_redis()
    seeds = seeds_for(site)
    log_before = len(access_log(site))
    dirs = [tmp_path / f"w{i}" for i in range(3)]
    procs = [start_worker(d, seeds, redis.url, "robots", "--max-pages", "400") for d in dirs]
    for p, d in zip(procs, dirs):
        assert p.wait(timeout=60) == 0, (d / "stderr.log").read_text()[-2000:]
    fetched = Counter(addr for _, addr, uri, _ in access_log(site)[log_before:] if uri == "/robots.txt")
    assert fetched and set(fetched.values()) == {1}, fetched
    shared = [int(re.search(r"(\d+) robots.txt read from the fleet", (d / "stderr.log").read_text()).group(1))
              for d in dirs]
    per_worker = [(d / "out.jsonl").read_bytes().count(b"\n") for d in dirs]
    # Every worker that crawled a host it did not read the robots.txt of got it from the fleet.
    assert sum(shared) >= 1, (shared, per_worker)
    assert sum(per_worker) == 400
