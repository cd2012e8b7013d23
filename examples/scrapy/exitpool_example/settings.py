"""Scrapy settings for crawling through an exitpool gateway.

The parts that matter for the gateway are marked "exitpool"; the rest are ordinary polite defaults.
Gateway address and credentials come from the environment (EXITPOOL_GATEWAY, EXITPOOL_USER,
EXITPOOL_PASSWORD), or from -s on the command line: scrapy crawl ip -s EXITPOOL_GATEWAY=10.0.0.5:8080.
"""
import os

BOT_NAME = "exitpool_example"
SPIDER_MODULES = ["exitpool_example.spiders"]
NEWSPIDER_MODULE = "exitpool_example.spiders"

# exitpool: where the gateway listens, and who we are to it (any user name works when the gateway runs
# without --users; the password is then ignored).
EXITPOOL_GATEWAY = os.environ.get("EXITPOOL_GATEWAY", "127.0.0.1:8080")
EXITPOOL_USER = os.environ.get("EXITPOOL_USER", "user")
EXITPOOL_PASSWORD = os.environ.get("EXITPOOL_PASSWORD", "x")

# exitpool: sets request.meta["proxy"] (with the user name options a request asks for in
# meta["exitpool_options"]) before Scrapy's HttpProxyMiddleware (750) turns it into a proxy connection.
DOWNLOADER_MIDDLEWARES = {
    "exitpool_example.middlewares.ExitpoolProxyMiddleware": 740,
}

# exitpool: the gateway already retries a failed dial on other exits (--retries) and answers 502/503/504
# with X-Exitpool-Error when it cannot; a few more tries from Scrapy cover bans (403/429 from a target:
# the gateway bans that exit for that host, so the retry leaves through another one).
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [403, 429, 500, 502, 503, 504, 522, 524, 408]
DOWNLOAD_TIMEOUT = 30

# Many requests in flight are cheap for the gateway; what a target tolerates is another matter.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0  # seconds between a site's first requests; AutoThrottle adapts from there
ROBOTSTXT_OBEY = True

TELNETCONSOLE_ENABLED = False
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
