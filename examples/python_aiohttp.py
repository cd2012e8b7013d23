#!/usr/bin/env python3
"""aiohttp through an exitpool gateway: many requests in flight, rotating, and a sticky session.

    EXITPOOL_GATEWAY=127.0.0.1:8080 EXITPOOL_USER=alice EXITPOOL_PASSWORD=secret \\
        python3 examples/python_aiohttp.py http://TARGET/

TARGET should answer with the caller's address (e.g. https://api.ipify.org). Each line printed:
LABEL exit=<X-Exitpool-Exit, - for https:// targets (tunnelled)> ip=<response body>.
Debian 12: apt install python3-aiohttp. aiohttp speaks HTTP proxies only (SOCKS needs aiohttp-socks,
not in Debian); the gateway's HTTP proxy and SOCKS5 share one port and one set of sessions.
"""
import asyncio
import os
import sys
import uuid

import aiohttp

GATEWAY = os.environ.get("EXITPOOL_GATEWAY", "127.0.0.1:8080")
USER = os.environ.get("EXITPOOL_USER", "user")
PASSWORD = os.environ.get("EXITPOOL_PASSWORD", "x")
IN_FLIGHT = int(os.environ.get("IN_FLIGHT", "8"))


async def fetch(http: aiohttp.ClientSession, url: str, label: str, *options: str) -> str:
    # Options (session-ID, country-CC, ...) ride in the proxy user name: USER-session-ab12.
    auth = aiohttp.BasicAuth("-".join((USER, *options)), PASSWORD)
    async with http.get(url, proxy=f"http://{GATEWAY}", proxy_auth=auth) as resp:
        resp.raise_for_status()  # 407: bad credentials or option; 502/503/504: the gateway says why
        body = (await resp.text()).strip()
        return f"{label} exit={resp.headers.get('X-Exitpool-Exit', '-')} ip={body}"


async def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TARGET_URL")
    if not url:
        sys.exit(f"usage: {sys.argv[0]} URL (or TARGET_URL=URL)")
    session_id = os.environ.get("EXITPOOL_SESSION") or uuid.uuid4().hex[:12]

    # trust_env=False: ignore HTTP_PROXY from the environment. The limit bounds connections to the
    # gateway; the gateway itself holds many more (one event loop per core).
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as http:
        # 1. IN_FLIGHT requests at once, no session: they spread over the exits.
        lines = await asyncio.gather(*(fetch(http, url, f"rotate-{i}") for i in range(1, IN_FLIGHT + 1)))
        # 2. IN_FLIGHT requests at once in one sticky session: all leave through one exit.
        lines += await asyncio.gather(*(fetch(http, url, f"session-{i}", f"session-{session_id}")
                                        for i in range(1, IN_FLIGHT + 1)))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
