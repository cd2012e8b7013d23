"""Routes every request through the exitpool gateway; options per request ride in the proxy user name.

    yield scrapy.Request(url)                                                  # rotating: next exit
    yield scrapy.Request(url, meta={"exitpool_options": ["session-cart42"]})   # sticky: same exit
    yield scrapy.Request(url, meta={"exitpool_options": ["country-us"]})       # only country=us exits

A request that already has meta["proxy"] is left alone.
"""
from urllib.parse import quote


class ExitpoolProxyMiddleware:
    def __init__(self, gateway: str, user: str, password: str):
        self.gateway, self.user, self.password = gateway, user, password

    @classmethod
    def from_crawler(cls, crawler):
        s = crawler.settings
        return cls(s.get("EXITPOOL_GATEWAY"), s.get("EXITPOOL_USER"), s.get("EXITPOOL_PASSWORD"))

    def process_request(self, request, spider):
        if "proxy" in request.meta:
            return None
        user = "-".join([self.user, *request.meta.get("exitpool_options", [])])
        # Scrapy's HttpProxyMiddleware sends these credentials as Proxy-Authorization. http:// URLs go
        # to the gateway in absolute form (a new exit per request without a session), https:// URLs
        # through a CONNECT tunnel.
        request.meta["proxy"] = f"http://{quote(user, safe='')}:{quote(self.password, safe='')}@{self.gateway}"
        return None
