"""Fetches one URL that answers with the caller's address a few times: rotating, in one sticky
session, and (with -a country=CC) from one country. One item per response: label, exit, ip.

    scrapy crawl ip -a url=http://TARGET/ [-a session=ID] [-a country=CC] -O ips.jsonl
"""
import uuid

import scrapy


class IpSpider(scrapy.Spider):
    name = "ip"

    def __init__(self, url=None, session=None, country=None, **kwargs):
        super().__init__(**kwargs)
        if not url:
            raise ValueError("usage: scrapy crawl ip -a url=URL")
        self.url, self.country = url, country
        self.session = session or uuid.uuid4().hex[:12]

    def start_requests(self):
        # dont_filter: the same URL on purpose, several times.
        for i in range(1, 4):
            yield scrapy.Request(self.url, dont_filter=True, cb_kwargs={"label": f"rotate-{i}"})
        for i in range(1, 4):
            yield scrapy.Request(self.url, dont_filter=True, cb_kwargs={"label": f"session-{i}"},
                                 meta={"exitpool_options": [f"session-{self.session}"]})
        if self.country:
            yield scrapy.Request(self.url, dont_filter=True, cb_kwargs={"label": f"country-{self.country}"},
                                 meta={"exitpool_options": [f"country-{self.country}"]})

    def parse(self, response, label):
        exit_id = response.headers.get("X-Exitpool-Exit", b"-").decode()
        yield {"label": label, "exit": exit_id, "ip": response.text.strip()}
