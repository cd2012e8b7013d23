"""Headless Chromium driven through its DevTools protocol (python3-websocket; no npm, no download).

    with Browser(tmp_dir, proxy="socks5://127.0.0.1:PORT") as b:
        page = b.open("http://127.0.0.1:ADMIN/")
        page.wait_for("document.body.dataset.updated")
        page.eval("document.getElementById('exits-matching').textContent")
        page.screenshot(path)
        assert not page.errors

`page.errors` collects console errors, uncaught exceptions and failed loads (Log.entryAdded errors).
Chromium runs in its own process group with a temp profile, stopped on exit. Loopback only: with a
proxy, `<-loopback>` makes Chromium send even 127.0.0.1 through it (it bypasses loopback by default).
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import stop_process

websocket = pytest.importorskip("websocket", reason="python3-websocket missing: scripts/install-deps.sh --test")


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    def __init__(self, ws_url: str, timeout: float):
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.ids = itertools.count(1)
        self.errors: list[str] = []
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _on_event(self, msg: dict) -> None:
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                     for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append(f"log: {e.get('text')} {e.get('url', '')}")
        self.events.append(msg)

    def call(self, method: str, **params) -> dict:
        mid = next(self.ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._on_event(msg)
        raise TimeoutError(f"no answer to {method} within {self.timeout} s")

    def navigate(self, url: str) -> None:
        r = self.call("Page.navigate", url=url)
        if r.get("errorText"):
            raise RuntimeError(f"navigating to {url}: {r['errorText']}")
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
                      what=f"{url} to load")

    def eval(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    def wait_for(self, expr: str, timeout: float = 10.0, what: str | None = None):
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or expr}")
            time.sleep(0.1)

    def text(self, element_id: str) -> str:
        return self.eval(f"document.getElementById({json.dumps(element_id)}).textContent")

    def screenshot(self, path: Path, width: int = 1280, height: int = 1000, mobile: bool = False) -> Path:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


class Browser:
    def __init__(self, tmp_dir: Path, proxy: str | None = None, timeout: float = 30.0):
        binary = chromium_path()
        if not binary:
            pytest.skip("chromium is not installed: scripts/install-deps.sh --test")
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_dir))
        self.timeout = timeout
        argv = [binary, "--headless=new", "--no-sandbox", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--metrics-recording-only",
                "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--no-pings",
                "--disable-default-apps", "--safebrowsing-disable-auto-update",
                # Chromium's own background requests would go through the proxy too (and, offline, fail there).
                "--disable-features=Translate,MediaRouter,OptimizationHints,OptimizationGuideModelDownloading,"
                "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
                # Loopback only: any name Chromium would resolve itself (its background requests without a
                # proxy) fails inside Chromium instead of reaching the machine's resolver.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]", "about:blank"]
        if proxy:
            argv += [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"]
        self.log = open(self.profile / "chromium.log", "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start: {(self.profile / 'chromium.log').read_text()[-2000:]}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().splitlines()[0])
        self.pages: list[Page] = []

    def _targets(self) -> list[dict]:
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as r:
            return json.loads(r.read())

    def open(self, url: str) -> Page:
        """A fresh tab, navigated to `url`."""
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with opener.open(req, timeout=5) as r:
            target = json.loads(r.read())
        page = Page(target["webSocketDebuggerUrl"], self.timeout)
        self.pages.append(page)
        page.navigate(url)
        return page

    def close(self) -> None:
        for p in getattr(self, "pages", []):
            p.close()
        stop_process(self.proc, grace=3)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
