#!/usr/bin/env python3
"""Python requests through an exitpool gateway: HTTP proxy (rotating, sticky, country) and SOCKS5.

    EXITPOOL_GATEWAY=127.0.0.1:8080 EXITPOOL_USER=alice EXITPOOL_PASSWORD=secret \\
        python3 examples/python_requests.py http://TARGET/

TARGET should answer with the caller's address (e.g. https://api.ipify.org). Each line printed:
LABEL exit=<X-Exitpool-Exit, or - where the client cannot see it> ip=<response body>.
Debian 12: apt install python3-requests python3-socks (python3-socks for socks5h://).
"""
import os
import sys
import uuid
from urllib.parse import quote

import requests

GATEWAY = os.environ.get("EXITPOOL_GATEWAY", "127.0.0.1:8080")
USER = os.environ.get("EXITPOOL_USER", "user")
PASSWORD = os.environ.get("EXITPOOL_PASSWORD", "x")


def proxy_url(scheme: str, *options: str) -> str:
    """The gateway as a proxy URL; options (e.g. "session-ab12", "country-us") ride in the user name."""
    user = "-".join((USER, *options))
    return f"{scheme}://{quote(user, safe='')}:{quote(PASSWORD, safe='')}@{GATEWAY}"


def show(label: str, resp: requests.Response) -> None:
    resp.raise_for_status()  # 407: bad credentials or option; 502/503/504: the gateway says why
    exit_id = resp.headers.get("X-Exitpool-Exit", "-")
    print(f"{label} exit={exit_id} ip={resp.text.strip()}", flush=True)


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TARGET_URL")
    if not url:
        sys.exit(f"usage: {sys.argv[0]} URL (or TARGET_URL=URL)")

    # trust_env=False: ignore HTTP_PROXY/NO_PROXY from the environment, use only the proxies given here.
    with requests.Session() as s:
        s.trust_env = False

        # 1. HTTP proxy, no session: every request (also on a kept-alive connection) takes the next exit.
        #    https:// URLs go through a CONNECT tunnel, hence the "https" key.
        rotating = {"http": proxy_url("http"), "https": proxy_url("http")}
        for i in range(1, 4):
            show(f"rotate-{i}", s.get(url, proxies=rotating, timeout=20))

        # 2. A sticky session: the same id keeps the same exit (for sesstime minutes, default 10).
        session_id = os.environ.get("EXITPOOL_SESSION") or uuid.uuid4().hex[:12]
        sticky = {"http": proxy_url("http", f"session-{session_id}"),
                  "https": proxy_url("http", f"session-{session_id}")}
        for i in range(1, 4):
            show(f"session-{i}", s.get(url, proxies=sticky, timeout=20))

        # 3. Targeting: only exits tagged country=CC (also city-, type-).
        country = os.environ.get("EXITPOOL_COUNTRY")
        if country:
            by_country = {"http": proxy_url("http", f"country-{country}"),
                          "https": proxy_url("http", f"country-{country}")}
            show(f"country-{country}", s.get(url, proxies=by_country, timeout=20))

        # 4. SOCKS5 on the same port. socks5h:// sends the name to the gateway (no DNS lookup here);
        #    socks5:// would resolve it on this machine first. Same session id: same exit.
        socks = {"http": proxy_url("socks5h", f"session-{session_id}"),
                 "https": proxy_url("socks5h", f"session-{session_id}")}
        for i in range(1, 3):
            show(f"socks5h-{i}", s.get(url, proxies=socks, timeout=20))


if __name__ == "__main__":
    main()
