#include "fetch/transfer.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <stdexcept>
#include <type_traits>

#include "fetch/input.hpp"
#include "fetch/result.hpp"
#include "net/ares.hpp"
#include "proto/ipv6_prefix.hpp"

namespace exitpool::fetch {

namespace {

std::size_t write_cb(char* data, std::size_t size, std::size_t n, void* user) {
  auto* c = static_cast<response_capture*>(user);
  const std::size_t len = size * n;
  c->body_size += len;
  if (c->body.size() < c->keep) {
    const std::size_t take = std::min(len, c->keep - c->body.size());
    c->body.append(data, take);
    c->truncated = c->truncated || take < len;
  } else if (len > 0) {
    c->truncated = true;
  }
  return len;
}

std::size_t header_cb(char* data, std::size_t size, std::size_t n, void* user) {
  auto* c = static_cast<response_capture*>(user);
  const std::size_t len = size * n;
  c->head.line(std::string_view(data, len));
  std::string_view line = trim(std::string_view(data, len));
  if (line.starts_with("HTTP/")) {
    c->headers.clear();  // a new response (after a redirect or a 1xx): keep the last one's
    c->proxy_challenge = false;
    c->raw_head.clear();
  }
  if (c->warc) {
    c->raw_head.append(data, len);
  }
  if (line.starts_with("HTTP/")) {
    return len;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return len;
  }
  std::string name(trim(line.substr(0, colon)));
  for (auto& ch : name) {
    ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  if (name == "proxy-authenticate") {
    c->proxy_challenge = true;
  }
  if (is_selected_header(name)) {
    c->headers.emplace_back(std::move(name), std::string(trim(line.substr(colon + 1))));
  }
  return len;
}

// --warc: the request heads libcurl sends. A CONNECT to the proxy is not the target's
// request (and carries the proxy's credentials): skipped.
int debug_cb(CURL*, curl_infotype type, char* data, std::size_t size, void* user) {
  if (type == CURLINFO_HEADER_OUT) {
    auto* c = static_cast<response_capture*>(user);
    std::string_view head(data, size);
    if (!head.starts_with("CONNECT ")) {
      c->request_head.assign(head);
    }
  }
  return 0;
}

std::string bracket(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::string option_name(CURLoption opt) {
  const curl_easyoption* o = curl_easy_option_by_id(opt);
  return o != nullptr ? fmt::format("CURLOPT_{}", o->name) : fmt::format("curl option {}", static_cast<int>(opt));
}

// curl_easy_setopt that keeps the first failure (later options are not set). Integers
// and enums go to libcurl as long, the type its variadic setopt reads for them.
class option_setter {
 public:
  explicit option_setter(CURL* e) : e_(e) {}
  template <class V>
  void operator()(CURLoption opt, V v) {
    if (rc_ != CURLE_OK) {
      return;
    }
    if constexpr (std::is_integral_v<V> || std::is_enum_v<V>) {
      rc_ = curl_easy_setopt(e_, opt, static_cast<long>(v));
    } else {
      rc_ = curl_easy_setopt(e_, opt, v);
    }
    if (rc_ != CURLE_OK) {
      failed_ = opt;
    }
  }
  // Empty, or "CURLOPT_NAME: libcurl's reason".
  std::string error() const {
    return rc_ == CURLE_OK ? std::string() : fmt::format("{}: {}", option_name(failed_), curl_easy_strerror(rc_));
  }

 private:
  CURL* e_;
  CURLcode rc_ = CURLE_OK;
  CURLoption failed_{};
};

// A random source address inside a prefix exit's prefix (one random source per thread).
std::string prefix_address(const proto::exit_spec& s) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  proto::ipv6_prefix p;
  inet_pton(AF_INET6, s.host.c_str(), p.network.data());
  p.length = s.prefix_len;
  return proto::format_ipv6(proto::address_in_prefix(p, rng(), rng()));
}

int freebind_cb(void*, curl_socket_t fd, curlsocktype purpose) {
  if (purpose == CURLSOCKTYPE_IPCXN) {
    const int on = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &on, sizeof on);
  }
  return CURL_SOCKOPT_OK;
}

// Sets every option of one attempt; the first refused option's text, or empty.
std::string setup(CURL* e, const std::string& url, const proto::exit_spec& s, CURLSH* share, const transfer_options& o,
                  response_capture& cap, void* tag) {
  option_setter set(e);
  if (o.warc) {
    set(CURLOPT_DEBUGFUNCTION, debug_cb);
    set(CURLOPT_DEBUGDATA, &cap);
    set(CURLOPT_VERBOSE, 1L);  // the debug callback sees only what VERBOSE shows
  }
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_PRIVATE, tag);
  set(CURLOPT_WRITEFUNCTION, write_cb);
  set(CURLOPT_WRITEDATA, &cap);
  set(CURLOPT_HEADERFUNCTION, header_cb);
  set(CURLOPT_HEADERDATA, &cap);
  set(CURLOPT_ERRORBUFFER, cap.errbuf);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, o.max_redirects > 0 ? 1L : 0L);
  set(CURLOPT_MAXREDIRS, o.max_redirects);
  if (!o.warc) {
    // WARC mode asks for no content coding, so bodies are archived as the server sent them.
    set(CURLOPT_ACCEPT_ENCODING, "");
  }
  set(CURLOPT_USERAGENT, o.user_agent.c_str());
  set(CURLOPT_TIMEOUT_MS, o.timeout_ms);
  set(CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms);
  set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  // Idle connections are cached per exit (share_for): with many exits and hosts, close
  // them sooner than libcurl's default (118 s) so descriptors do not pile up.
  set(CURLOPT_MAXAGE_CONN, 30L);
  set(CURLOPT_HTTP_VERSION, o.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  set(CURLOPT_SSL_VERIFYPEER, o.insecure ? 0L : 1L);
  set(CURLOPT_SSL_VERIFYHOST, o.insecure ? 0L : 2L);
  if (!o.ca_file.empty()) {
    set(CURLOPT_CAINFO, o.ca_file.c_str());
  }
  set(CURLOPT_SHARE, share);
  if (s.scheme == proto::exit_scheme::direct) {
    set(CURLOPT_PROXY, "");  // never an environment proxy
    if (s.prefix_len > 0) {
      // An IPv6 prefix exit: a random address inside it per transfer, bound with IPV6_FREEBIND
      // (libcurl calls the sockopt callback before it binds CURLOPT_INTERFACE).
      const std::string iface = "host!" + prefix_address(s);
      set(CURLOPT_INTERFACE, iface.c_str());
      set(CURLOPT_SOCKOPTFUNCTION, freebind_cb);
      set(CURLOPT_IPRESOLVE, CURL_IPRESOLVE_V6);
    } else if (!s.host.empty()) {
      const std::string iface = "host!" + s.host;
      set(CURLOPT_INTERFACE, iface.c_str());
      // Resolve names to the source address's family only.
      const int fam = literal_family(s.host);
      set(CURLOPT_IPRESOLVE, fam == 4 ? CURL_IPRESOLVE_V4 : fam == 6 ? CURL_IPRESOLVE_V6 : CURL_IPRESOLVE_WHATEVER);
    }
    return set.error();
  }
  const std::string proxy =
      fmt::format("{}://{}:{}", proto::scheme_name(s.scheme), bracket(s.host), static_cast<unsigned>(s.port));
  set(CURLOPT_PROXY, proxy.c_str());
  // Set on every attempt (curl_easy_reset cleared the previous exit's): a retry on
  // another exit sends that exit's credentials, and libcurl sends them only to the
  // proxy, never to the target.
  if (!s.user.empty() || !s.pass.empty()) {
    set(CURLOPT_PROXYUSERNAME, s.user.c_str());
    set(CURLOPT_PROXYPASSWORD, s.pass.c_str());
  }
  if (s.scheme == proto::exit_scheme::https) {
    set(CURLOPT_PROXY_SSL_VERIFYPEER, s.tls_verify ? 1L : 0L);
    set(CURLOPT_PROXY_SSL_VERIFYHOST, s.tls_verify ? 2L : 0L);
    if (!o.ca_file.empty()) {
      set(CURLOPT_PROXY_CAINFO, o.ca_file.c_str());
    }
  }
  return set.error();
}

template <class T>
void get(CURL* e, CURLINFO what, T* out) {
  if (const CURLcode rc = curl_easy_getinfo(e, what, out); rc != CURLE_OK) {
    throw std::runtime_error(fmt::format("curl_easy_getinfo({}): {}", static_cast<int>(what), curl_easy_strerror(rc)));
  }
}

std::string get_string(CURL* e, CURLINFO what) {
  char* s = nullptr;
  get(e, what, &s);
  return s != nullptr ? std::string(s) : std::string();
}

transfer_info read_info(CURL* e) {
  transfer_info i;
  get(e, CURLINFO_RESPONSE_CODE, &i.status);
  get(e, CURLINFO_HTTP_CONNECTCODE, &i.connect_code);
  curl_off_t t = 0;
  const std::pair<CURLINFO, std::int64_t*> times[] = {{CURLINFO_NAMELOOKUP_TIME_T, &i.dns_us},
                                                      {CURLINFO_CONNECT_TIME_T, &i.connect_us},
                                                      {CURLINFO_APPCONNECT_TIME_T, &i.tls_us},
                                                      {CURLINFO_STARTTRANSFER_TIME_T, &i.ttfb_us},
                                                      {CURLINFO_TOTAL_TIME_T, &i.total_us}};
  for (auto [what, out] : times) {
    get(e, what, &t);
    *out = t;
  }
  i.effective_url = get_string(e, CURLINFO_EFFECTIVE_URL);
  i.primary_ip = get_string(e, CURLINFO_PRIMARY_IP);
  i.local_ip = get_string(e, CURLINFO_LOCAL_IP);
  return i;
}

void check(CURLMcode rc, const char* what) {
  if (rc != CURLM_OK) {
    throw std::runtime_error(fmt::format("{}: {}", what, curl_multi_strerror(rc)));
  }
}

// The host and port of `url` as libcurl will see them; nullopt when it does not parse
// (libcurl then reports the URL itself).
std::optional<std::pair<std::string, long>> host_and_port(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) {
    return std::nullopt;
  }
  std::optional<std::pair<std::string, long>> out;
  char* host = nullptr;
  char* port = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    out.emplace(host, std::strtol(port, nullptr, 10));
  }
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return host.starts_with('[') || inet_pton(AF_INET, host.c_str(), buf) == 1;
}

// "+host:port:addr,[v6addr]" lines for CURLOPT_RESOLVE ('+': libcurl may let them expire).
curl_slist* resolve_list(const std::string& host, const std::vector<long>& ports,
                         const std::vector<net::dns::address>& addrs) {
  std::string joined;
  for (const auto& a : addrs) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), text, sizeof text);
    if (!joined.empty()) {
      joined += ',';
    }
    joined += a.v6 ? fmt::format("[{}]", text) : std::string(text);
  }
  curl_slist* list = nullptr;
  for (const long port : ports) {
    curl_slist* next = curl_slist_append(list, fmt::format("+{}:{}:{}", host, port, joined).c_str());
    if (next == nullptr) {
      curl_slist_free_all(list);
      return nullptr;
    }
    list = next;
  }
  return list;
}

}  // namespace

void prepare_process() {
  if (const CURLcode rc = curl_global_init(CURL_GLOBAL_ALL); rc != CURLE_OK) {
    throw std::runtime_error(fmt::format("curl_global_init: {}", curl_easy_strerror(rc)));
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// The engine's resolver: c-ares sockets polled by poll() along with libcurl's.
struct transfer_engine::resolver_state {
  explicit resolver_state(const net::dns::config& cfg)
      : table(cfg.cache_size, cfg.ttl), ares(cfg, [this](int fd, bool r, bool w) { watch(fd, r, w); }) {}

  void watch(int fd, bool read, bool write) {
    auto it = std::find_if(fds.begin(), fds.end(), [fd](const curl_waitfd& w) { return w.fd == fd; });
    if (!read && !write) {
      if (it != fds.end()) {
        fds.erase(it);
      }
      return;
    }
    if (it == fds.end()) {
      it = fds.insert(fds.end(), curl_waitfd{fd, 0, 0});
    }
    it->events = static_cast<short>((read ? CURL_WAIT_POLLIN : 0) | (write ? CURL_WAIT_POLLOUT : 0));
  }

  net::dns::lookup_table table;
  std::vector<curl_waitfd> fds;
  net::dns::ares_client ares;  // last: it closes its sockets (through watch) before fds goes
};

void response_capture::reset(bool ban_lines) {
  head.reset(ban_lines);
  body.clear();
  truncated = false;
  body_size = 0;
  headers.clear();
  proxy_challenge = false;
  raw_head.clear();
  request_head.clear();
  errbuf[0] = '\0';
}

std::string response_capture::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

transfer_engine::transfer_engine(std::size_t exits) : shares_(exits, nullptr) {
  multi_ = curl_multi_init();
  if (multi_ == nullptr) {
    throw std::runtime_error("curl_multi_init failed");
  }
}

transfer_engine::~transfer_engine() {
  // Teardown cannot fail usefully: a failure is only reported. Handles still in flight
  // (a stop or a fatal error) are removed before anything is cleaned up.
  auto report = [](const char* what, const char* why) { std::fprintf(stderr, "fetch: %s: %s\n", what, why); };
  dns_.reset();  // lookups still pending are dropped: they would add handles
  for (auto& [e, list] : resolve_lists_) {
    curl_slist_free_all(list);
  }
  for (CURL* e : all_easy_) {
    if (const CURLMcode rc = curl_multi_remove_handle(multi_, e); rc != CURLM_OK) {
      report("curl_multi_remove_handle", curl_multi_strerror(rc));
    }
    curl_easy_cleanup(e);
  }
  if (const CURLMcode rc = curl_multi_cleanup(multi_); rc != CURLM_OK) {
    report("curl_multi_cleanup", curl_multi_strerror(rc));
  }
  for (CURLSH* s : shares_) {
    if (s != nullptr) {
      if (const CURLSHcode rc = curl_share_cleanup(s); rc != CURLSHE_OK) {
        report("curl_share_cleanup", curl_share_strerror(rc));
      }
    }
  }
}

CURL* transfer_engine::take_easy() {
  if (free_easy_.empty()) {
    CURL* e = curl_easy_init();
    if (e == nullptr) {
      throw std::runtime_error("curl_easy_init failed");
    }
    all_easy_.push_back(e);
    return e;
  }
  CURL* e = free_easy_.back();
  free_easy_.pop_back();
  curl_easy_reset(e);
  return e;
}

void transfer_engine::give_back(CURL* e) {
  auto it = std::find_if(resolve_lists_.begin(), resolve_lists_.end(), [e](const auto& p) { return p.first == e; });
  if (it != resolve_lists_.end()) {
    curl_slist_free_all(it->second);
    resolve_lists_.erase(it);
  }
  free_easy_.push_back(e);
}

CURLSH* transfer_engine::share_for(std::uint32_t exit_index) {
  // One connection cache per exit: a kept-alive connection can only ever be reused
  // by a request that picked the same exit (libcurl's own matching does not look at
  // CURLOPT_INTERFACE when the new request has none, nor at SOCKS credentials).
  auto& s = shares_.at(exit_index);
  if (s == nullptr) {
    s = curl_share_init();
    if (s == nullptr) {
      throw std::runtime_error("curl_share_init failed");
    }
    if (const CURLSHcode rc = curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT); rc != CURLSHE_OK) {
      // Without it connections would be reused across exits: no fetch is better.
      throw std::runtime_error(fmt::format("curl_share_setopt(CURL_LOCK_DATA_CONNECT): {}", curl_share_strerror(rc)));
    }
  }
  return s;
}

void transfer_engine::start(const std::string& url, const proto::exit_spec& exit, std::uint32_t exit_index,
                            const transfer_options& opts, response_capture& cap, void* tag) {
  cap.reset(opts.ban_lines);
  cap.keep = opts.keep;
  cap.warc = opts.warc;
  CURL* e = take_easy();
  std::string error = setup(e, url, exit, share_for(exit_index), opts, cap, tag);
  if (!error.empty()) {
    give_back(e);
    failed_setups_.push_back(finished_transfer{tag, CURLE_OK, std::move(error), {}});
    return;
  }
  // The gateway-side resolver for the names libcurl would resolve itself (socks5h:// and
  // HTTP proxies resolve the target at the exit).
  if (opts.dns && (exit.scheme == proto::exit_scheme::direct || exit.scheme == proto::exit_scheme::socks5)) {
    resolve_then_add(e, url, opts, cap, tag);
    return;
  }
  check(curl_multi_add_handle(multi_, e), "curl_multi_add_handle");
}

void transfer_engine::resolve_then_add(CURL* e, const std::string& url, const transfer_options& opts,
                                       response_capture& cap, void* tag) {
  const auto target = host_and_port(url);
  const auto name = target && !is_ip_literal(target->first) ? net::dns::normalize_name(target->first) : std::nullopt;
  if (!name) {
    check(curl_multi_add_handle(multi_, e), "curl_multi_add_handle");  // a literal, or libcurl's to refuse
    return;
  }
  if (!dns_) {
    dns_ = std::make_unique<resolver_state>(*opts.dns);
  }
  // The URL's port, and those of a redirect to the same host's other scheme.
  std::vector<long> ports{target->second};
  for (const long p : {80L, 443L}) {
    if (p != target->second) {
      ports.push_back(p);
    }
  }
  auto begun = dns_->table.begin(
      *name,
      [this, e, host = target->first, ports, &cap, tag](const net::dns::answer& a) {
        on_resolved(e, host, ports, a, cap, tag);
      },
      net::dns::clock::now());
  if (begun.how == net::dns::source::cache) {
    on_resolved(e, target->first, ports, begun.cached, cap, tag);
  } else if (begun.how == net::dns::source::query) {
    dns_->ares.lookup(*name, [this, n = *name](bool v6, net::dns::answer a) {
      dns_->table.on_family(n, v6, std::move(a), net::dns::clock::now());
    });
  }
}

void transfer_engine::on_resolved(CURL* e, const std::string& host, const std::vector<long>& ports,
                                  const net::dns::answer& a, response_capture& cap, void* tag) {
  if (a.st != net::dns::status::ok) {
    std::snprintf(cap.errbuf, CURL_ERROR_SIZE, "cannot resolve %s: %s", host.c_str(),
                  std::string(net::dns::status_text(a.st)).c_str());
    give_back(e);
    failed_setups_.push_back(finished_transfer{
        tag, a.st == net::dns::status::timeout ? CURLE_OPERATION_TIMEDOUT : CURLE_COULDNT_RESOLVE_HOST, {}, {}});
    return;
  }
  curl_slist* list = resolve_list(host, ports, a.addresses);
  const CURLcode rc = list == nullptr ? CURLE_OUT_OF_MEMORY : curl_easy_setopt(e, CURLOPT_RESOLVE, list);
  if (list != nullptr) {
    resolve_lists_.emplace_back(e, list);
  }
  if (rc != CURLE_OK) {
    give_back(e);
    failed_setups_.push_back(
        finished_transfer{tag, CURLE_OK, fmt::format("CURLOPT_RESOLVE: {}", curl_easy_strerror(rc)), {}});
    return;
  }
  check(curl_multi_add_handle(multi_, e), "curl_multi_add_handle");
}

void transfer_engine::perform() {
  int running = 0;
  check(curl_multi_perform(multi_, &running), "curl_multi_perform");
}

void transfer_engine::poll(std::chrono::milliseconds timeout) {
  long long ms = failed_setups_.empty() ? std::max<long long>(0, timeout.count()) : 0;
  if (!dns_) {
    check(curl_multi_poll(multi_, nullptr, 0, static_cast<int>(ms), nullptr), "curl_multi_poll");
    return;
  }
  if (const auto next = dns_->ares.next_timeout()) {
    ms = std::min<long long>(ms, next->count());
  }
  for (auto& f : dns_->fds) {
    f.revents = 0;
  }
  check(
      curl_multi_poll(multi_, dns_->fds.data(), static_cast<unsigned>(dns_->fds.size()), static_cast<int>(ms), nullptr),
      "curl_multi_poll");
  // A copy: answering may open or close c-ares sockets (and start transfers).
  const std::vector<curl_waitfd> ready = dns_->fds;
  for (const auto& f : ready) {
    if (f.revents != 0) {
      dns_->ares.process((f.revents & CURL_WAIT_POLLIN) != 0 ? f.fd : -1,
                         (f.revents & CURL_WAIT_POLLOUT) != 0 ? f.fd : -1);
    }
  }
  dns_->ares.process(-1, -1);  // c-ares's retries and timeouts
}

bool transfer_engine::wakeup() noexcept {
  return curl_multi_wakeup(multi_) == CURLM_OK;
}

std::optional<finished_transfer> transfer_engine::next_done() {
  if (!failed_setups_.empty()) {
    finished_transfer f = std::move(failed_setups_.front());
    failed_setups_.pop_front();
    return f;
  }
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) {
      continue;
    }
    CURL* e = m->easy_handle;
    finished_transfer f;
    f.rc = m->data.result;  // read before remove_handle: m is libcurl's and may go
    char* tag = nullptr;
    get(e, CURLINFO_PRIVATE, &tag);
    f.tag = tag;
    f.info = read_info(e);
    check(curl_multi_remove_handle(multi_, e), "curl_multi_remove_handle");
    give_back(e);
    return f;
  }
  return std::nullopt;
}

}  // namespace exitpool::fetch
