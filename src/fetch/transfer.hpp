#pragma once
// A shard's libcurl transfers: one multi handle, easy handles kept for reuse, and one
// connection cache (CURLSH) per exit. start() sets up an easy handle for a URL through
// an exit (proxy URL, credentials, a direct exit's source address, TLS options) with
// callbacks that fill the caller's response_capture; next_done() hands back what
// libcurl reported when the transfer ended.
//
// Errors: every libcurl return code is checked. An option libcurl refuses fails that
// transfer only: it ends at once, with setup_error naming the option. Failures of the
// multi handle, the share setup or curl_easy_getinfo are programming (or build) errors:
// std::runtime_error, which the shard turns into a fatal error.
//
// Names: with transfer_options::dns, the target host of a direct or socks5:// exit is
// looked up by the engine's own resolver (c-ares, its sockets polled with libcurl's in
// poll(); cache and coalescing of net/dns_cache.hpp, one per shard like the gateway's)
// and libcurl is handed the addresses (CURLOPT_RESOLVE, for the URL's port, 80 and 443),
// so libcurl's connection reuse, which matches on host name and port, is kept. Until the
// answer comes the transfer waits in the engine, not in the multi handle. A name that
// does not resolve ends the transfer with CURLE_COULDNT_RESOLVE_HOST (a lookup timeout:
// CURLE_OPERATION_TIMEDOUT) and the reason in errbuf. Names libcurl meets later (a
// redirect to another host, an exit's own host name) it still resolves itself.
//
// Threads: one shard's thread owns an engine; wakeup() may be called from any thread.

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fetch/head_capture.hpp"
#include "net/dns_cache.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::fetch {

// Once per process, before any engine is made (the main thread, before other threads use
// libcurl): curl_global_init, and the descriptor limit raised to its hard maximum (every
// request in flight holds a socket, and idle connections are cached per exit). Throws
// std::runtime_error when libcurl cannot initialise.
void prepare_process();

// Per run, the same for every transfer.
struct transfer_options {
  std::string user_agent;
  long max_redirects = 5;
  long timeout_ms = 30000;
  long connect_timeout_ms = 10000;
  bool insecure = false;  // do not verify targets' certificates
  std::string ca_file;    // extra CA bundle for targets and https:// exits
  bool http2 = true;
  bool warc = false;       // keep the raw heads (and ask for no content coding)
  std::size_t keep = 0;    // body bytes to keep
  bool ban_lines = false;  // keep every header line of the last response (ban patterns read them)
  // Resolver settings (--dns-*): targets of direct and socks5:// exits are resolved by the
  // engine. nullopt: libcurl resolves every name itself.
  std::optional<net::dns::config> dns;
};

// What the callbacks capture of one attempt's response. Owned by the caller; it must
// outlive the transfer.
struct response_capture {
  std::size_t keep = 0;
  bool warc = false;
  std::string body;
  bool truncated = false;
  std::uint64_t body_size = 0;                               // bytes received, kept or not
  std::vector<std::pair<std::string, std::string>> headers;  // selected, of the last response
  bool proxy_challenge = false;  // the last response carried Proxy-Authenticate: it came from the proxy
  std::string raw_head;          // --warc: the last response's status line and headers, as received
  std::string request_head;      // --warc: the last request head sent to the target
  head_capture head;             // the last response's head as the ban policy reads it
  char errbuf[CURL_ERROR_SIZE] = {};

  // Ready for a new attempt; `ban_lines`: see transfer_options.
  void reset(bool ban_lines = false);
  // The value of a kept header (lower-case name); empty when absent.
  std::string header(std::string_view name) const;
};

// What libcurl reports about a finished transfer (every curl_easy_getinfo checked).
struct transfer_info {
  long status = 0;        // of the last response
  long connect_code = 0;  // the proxy's answer to CONNECT
  // Microseconds from the start: cumulative (connect includes dns); to the proxy through one.
  std::int64_t dns_us = 0, connect_us = 0, tls_us = 0, ttfb_us = 0, total_us = 0;
  std::string effective_url;
  std::string primary_ip;  // the address connected to (the proxy's, through one)
  std::string local_ip;    // our source address
};

struct finished_transfer {
  void* tag = nullptr;  // as given to start()
  CURLcode rc = CURLE_OK;
  std::string setup_error;  // non-empty: an option was refused, nothing was sent ("CURLOPT_X: why")
  transfer_info info;
};

class transfer_engine {
 public:
  // `exits`: the pool's size (one connection cache per exit index). Throws when libcurl
  // cannot make a multi handle.
  explicit transfer_engine(std::size_t exits);
  ~transfer_engine();
  transfer_engine(const transfer_engine&) = delete;
  transfer_engine& operator=(const transfer_engine&) = delete;

  // Starts fetching `url` through `exit` (index `exit_index` in the pool). `cap` is reset
  // and filled by the callbacks; `tag` comes back in finished_transfer (CURLOPT_PRIVATE).
  // A refused option ends the transfer at once (next_done() reports it).
  void start(const std::string& url, const proto::exit_spec& exit, std::uint32_t exit_index,
             const transfer_options& opts, response_capture& cap, void* tag);

  // Drives the transfers (curl_multi_perform).
  void perform();
  // Waits up to `timeout` for socket activity or a wakeup (0 when a setup failure waits).
  void poll(std::chrono::milliseconds timeout);
  // Interrupts poll(). Any thread. false when libcurl could not signal: the shard then
  // wakes at its poll timeout instead.
  bool wakeup() noexcept;
  // The next finished transfer, its handle back in the free list; nullopt when none.
  std::optional<finished_transfer> next_done();

 private:
  CURL* take_easy();
  void give_back(CURL* e);
  CURLSH* share_for(std::uint32_t exit_index);
  // Hands `e` to the multi handle once its target's addresses are known.
  void resolve_then_add(CURL* e, const std::string& url, const transfer_options& opts, response_capture& cap,
                        void* tag);
  void on_resolved(CURL* e, const std::string& host, const std::vector<long>& ports, const net::dns::answer& a,
                   response_capture& cap, void* tag);

  struct resolver_state;
  std::unique_ptr<resolver_state> dns_;  // made by the first start() with opts.dns

  CURLM* multi_ = nullptr;
  std::vector<CURL*> all_easy_;  // every easy handle made, for cleanup
  std::vector<CURL*> free_easy_;
  std::vector<CURLSH*> shares_;
  std::deque<finished_transfer> failed_setups_;
  std::vector<std::pair<CURL*, curl_slist*>> resolve_lists_;  // CURLOPT_RESOLVE lists, freed with their handle
};

}  // namespace exitpool::fetch
