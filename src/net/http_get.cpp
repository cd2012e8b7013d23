#include "net/http_get.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <charconv>
#include <memory>
#include <mutex>

#include "proto/text.hpp"

namespace exitpool::net {

namespace {

struct transfer {
  pool::fetch_result* out;
  std::size_t max_bytes;
  bool too_big = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<transfer*>(user);
  const std::size_t bytes = size * n;
  if (t->out->body.size() + bytes > t->max_bytes) {
    t->too_big = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->out->body.append(data, bytes);
  return bytes;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Each header line of each response (a 100 Continue's too): the final one's values win.
std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<transfer*>(user);
  const std::string_view line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    const auto name = proto::lower(trim(line.substr(0, colon)));
    const auto value = trim(line.substr(colon + 1));
    if (name == "etag") {
      t->out->etag.assign(value);
    } else if (name == "last-modified") {
      t->out->last_modified.assign(value);
    } else if (name == "retry-after") {
      long long s = 0;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), s);
      if (ec == std::errc() && p == value.data() + value.size() && s >= 0) {
        t->out->retry_after = std::chrono::seconds(std::min<long long>(s, 86400));
      }
    }
  } else if (line.starts_with("HTTP/")) {
    t->out->etag.clear();  // a new response (after a 1xx) starts afresh
    t->out->last_modified.clear();
    t->out->retry_after.reset();
  }
  return size * n;
}

}  // namespace

pool::fetch_result http_get(const http_get_request& req) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_ALL); });
  pool::fetch_result out;
  transfer t{&out, req.max_bytes};
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  if (!easy) {
    out.error = "cannot start a transfer (curl_easy_init)";
    return out;
  }
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) {
    headers = curl_slist_append(headers, h.c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers, curl_slist_free_all);
  char errbuf[CURL_ERROR_SIZE] = {};
  CURL* c = easy.get();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  curl_easy_setopt(c, CURLOPT_USERAGENT, "exitpool");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through an http_proxy from the environment
  if (!req.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  if (t.too_big) {
    out.error = fmt::format("answer larger than {} bytes", req.max_bytes);
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    out.error = fmt::format("no complete answer within {} ms", req.timeout.count());
  } else if (rc != CURLE_OK) {
    out.error = errbuf[0] != '\0' ? proto::printable(errbuf) : curl_easy_strerror(rc);
  }
  if (!out.error.empty()) {
    out.body.clear();
    return out;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  out.status = static_cast<int>(status);
  return out;
}

}  // namespace exitpool::net
