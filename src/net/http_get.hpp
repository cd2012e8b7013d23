#pragma once
// One blocking HTTP(S) GET with libcurl: the fetch of a pool source's list (gateway/pool_sources,
// `check --pool URL`). Never on a shard: it blocks up to the timeout. Any other thread.
//
// Redirects are not followed (a 3xx is the answer: a redirect could carry a key header to
// another host). The body is capped (max_bytes: "answer larger than N bytes" past it). Never
// throws; a transport failure is fetch_result::error. The error texts quote no URL.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "pool/source.hpp"

namespace exitpool::net {

struct http_get_request {
  std::string url;
  std::vector<std::string> headers;  // "Name: value" lines
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  std::size_t max_bytes = std::size_t{256} << 20;
  std::string ca_file;  // extra CA bundle for https:// ("" = the system's)
};

pool::fetch_result http_get(const http_get_request& req);

}  // namespace exitpool::net
