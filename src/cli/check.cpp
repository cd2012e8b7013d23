#include "cli/check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "admin/exits_json.hpp"
#include "net/dialer.hpp"
#include "net/stream.hpp"
#include "pool/pool.hpp"
#include "proto/base64.hpp"
#include "proto/http_head.hpp"
#include "proto/pool_line.hpp"

namespace exitpool::cli {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using net::awaitable;
using net::clock;
using net::error_code;
using net::nothrow_awaitable;

constexpr std::size_t max_body_bytes = 64 * 1024;

struct check_options {
  std::string pool_file;
  std::string url;
  double timeout_s = 10;
  int concurrency = 64;
  bool json = false;
  std::string ca_file;
};

struct check_result {
  bool ok = false;
  std::string error;       // one line, no secrets; empty when ok
  std::string error_type;  // RFC 9209 Proxy-Status error type when known
  double dial_ms = -1;     // negative: the dial did not finish
  double latency_ms = 0;   // dial + request + response, or until the failure
  int status = 0;          // HTTP status from the target; 0: none
  std::string exit_ip;     // first body line when it is an IP address
};

// Shared by the workers of one run; they all live on one single-threaded io_context.
struct check_job {
  std::shared_ptr<const pool::snapshot> snap;
  std::vector<check_result> results;
  std::size_t next = 0;
  proto::absolute_target target;
  std::string url;          // as given (absolute-form for HTTP proxy exits)
  std::string host_header;  // authority for the Host header
  net::dial_options opts;
  std::chrono::milliseconds timeout{};
};

std::string sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error(fmt::format("{}: cannot open pool file", path));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// TODO(issue 3): shared with gateway/server.cpp's make_tls_context; move both to net/ once the gateway settles.
asio::ssl::context make_tls_context(bool verify, const std::string& ca_file) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (verify) {
    ctx.set_default_verify_paths();
    if (!ca_file.empty()) {
      error_code ec;
      ctx.load_verify_file(ca_file, ec);
      if (ec) {
        throw std::runtime_error(fmt::format("--ca-file {}: {}", ca_file, ec.message()));
      }
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
  } else {
    ctx.set_verify_mode(asio::ssl::verify_none);
  }
  return ctx;
}

double ms_since(clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
}

struct exchange_result {
  std::string error;  // empty on success
  std::string error_type;
  int status = 0;
  std::string reason;
  std::string body;  // decoded, at most max_body_bytes
};

// Appends what one read from `up` returns to `b`.
awaitable<std::tuple<error_code, std::size_t>> read_more(net::stream& up, std::string& b) {
  const std::size_t old = b.size();
  b.resize(old + 16 * 1024);
  auto [ec, n] = co_await up.read_some(asio::buffer(b.data() + old, 16 * 1024));
  b.resize(old + n);
  co_return std::tuple{ec, n};
}

// Sends `request` on `up` and reads the response head and up to max_body_bytes of body.
// `up` is owned by the caller, which awaits this coroutine to completion.
awaitable<exchange_result> http_exchange(net::stream& up, std::string request, std::string buf) {
  exchange_result out;
  if (auto [ec, n] = co_await up.write_all(asio::buffer(request)); ec) {
    out.error = "sending the request failed: " + ec.message();
    out.error_type = "connection_terminated";
    co_return out;
  }
  proto::response_parse_result parsed;
  for (;;) {
    parsed = proto::parse_response_head(buf);
    if (parsed.status == proto::parse_status::error) {
      out.error = "malformed response: " + parsed.error;
      out.error_type = "http_protocol_error";
      co_return out;
    }
    if (parsed.status == proto::parse_status::complete) {
      if (parsed.head.status >= 100 && parsed.head.status < 200) {
        buf.erase(0, parsed.consumed);  // interim response
        continue;
      }
      break;
    }
    auto [ec, n] = co_await read_more(up, buf);
    if (n == 0 && ec) {
      out.error =
          buf.empty() ? "closed before responding: " + ec.message() : "response head incomplete: " + ec.message();
      out.error_type = "http_response_incomplete";
      co_return out;
    }
  }
  out.status = parsed.head.status;
  out.reason = parsed.head.reason;
  buf.erase(0, parsed.consumed);
  auto framing = proto::response_body_framing(parsed.head, "GET");
  if (!framing.framing) {
    out.error = "response with bad framing: " + framing.error;
    out.error_type = "http_protocol_error";
    co_return out;
  }
  const auto kind = framing.framing->kind;
  proto::chunked_scanner scanner;
  std::size_t scanned = 0;
  auto complete = [&]() {
    switch (kind) {
      case proto::body_kind::none:
        return true;
      case proto::body_kind::content_length:
        return buf.size() >= framing.framing->length;
      case proto::body_kind::chunked: {
        auto r = scanner.feed(std::string_view(buf).substr(scanned));
        scanned += r.consumed;
        return r.done || r.error;
      }
      case proto::body_kind::until_close:
        return false;
    }
    return true;
  };
  while (!complete() && buf.size() < max_body_bytes) {
    auto [ec, n] = co_await read_more(up, buf);
    if (n == 0 && ec) {
      break;  // EOF ends an until-close body; a truncated body still has its first line
    }
  }
  if (kind == proto::body_kind::chunked) {
    out.body = decode_chunked(buf);
  } else if (kind == proto::body_kind::content_length) {
    out.body = buf.substr(0, std::min<std::uint64_t>(framing.framing->length, buf.size()));
  } else if (kind == proto::body_kind::until_close) {
    out.body = std::move(buf);
  }
  if (out.body.size() > max_body_bytes) {
    out.body.resize(max_body_bytes);
  }
  co_return out;
}

awaitable<void> check_one(std::shared_ptr<check_job> job, std::size_t i) {
  const pool::exit& ex = *job->snap->exits()[i];
  check_result& res = job->results[i];
  const auto& spec = ex.spec();
  const bool via_http_proxy = spec.scheme == proto::exit_scheme::http || spec.scheme == proto::exit_scheme::https;
  const auto t0 = clock::now();
  const auto deadline = t0 + job->timeout;

  auto r = co_await net::dial(ex, job->target.where.host, job->target.where.port,
                              via_http_proxy ? net::dial_mode::forward : net::dial_mode::tunnel, job->opts);
  res.latency_ms = ms_since(t0);
  if (r.error != net::dial_error::none) {
    res.error = sanitize(r.detail);
    res.error_type = net::proxy_status_error(r.error);
    co_return;
  }
  res.dial_ms = res.latency_ms;

  // Absolute-form to HTTP proxies (the forward path the gateway uses for plain
  // HTTP); origin-form inside tunnels.
  std::string req = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: exitpool-check/0.1\r\nAccept: */*\r\n",
                                via_http_proxy ? job->url : job->target.origin_form, job->host_header);
  if (via_http_proxy && !spec.user.empty()) {
    req += "Proxy-Authorization: Basic " + proto::base64_encode(spec.user + ":" + spec.pass) + "\r\n";
  }
  req += "Connection: close\r\n\r\n";

  using namespace asio::experimental::awaitable_operators;
  net::stream up = std::move(r.upstream);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_at(deadline);
  auto outcome =
      co_await (http_exchange(up, std::move(req), std::move(r.leftover)) || timer.async_wait(nothrow_awaitable));
  up.close();
  res.latency_ms = ms_since(t0);
  if (outcome.index() == 1) {
    res.error = fmt::format("no complete response within {} ms", job->timeout.count());
    res.error_type = "http_response_timeout";
    co_return;
  }
  auto& x = std::get<0>(outcome);
  res.status = x.status;
  res.exit_ip = first_line_ip(x.body);
  if (!x.error.empty()) {
    res.error = sanitize(x.error);
    res.error_type = x.error_type;
    co_return;
  }
  if (x.status < 200 || x.status > 299) {
    res.error = sanitize(fmt::format("HTTP {} {}", x.status, x.reason));
    co_return;
  }
  res.ok = true;
}

// Takes exits off the shared list until none is left: `--concurrency` of these run at once.
awaitable<void> worker(std::shared_ptr<check_job> job) {
  while (job->next < job->results.size()) {
    const std::size_t i = job->next++;
    co_await check_one(job, i);
  }
}

std::string describe_tags(const proto::exit_spec& s) {
  std::string out;
  auto add = [&out](std::string_view k, std::string_view v) {
    if (!out.empty()) {
      out += ' ';
    }
    out += k;
    out += '=';
    out += v;
  };
  if (!s.country.empty()) {
    add("country", s.country);
  }
  if (!s.city.empty()) {
    add("city", s.city);
  }
  if (!s.type.empty()) {
    add("type", s.type);
  }
  if (s.weight != 1.0) {
    add("weight", fmt::format("{}", s.weight));
  }
  for (const auto& [k, v] : s.tags) {
    add(k, v);
  }
  return out;
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

void print_json(const check_job& job) {
  json::array arr;
  for (std::size_t i = 0; i < job.results.size(); ++i) {
    const auto& spec = job.snap->exits()[i]->spec();
    const auto& r = job.results[i];
    json::object o;
    o["id"] = spec.id;
    o["url"] = proto::redacted_url(spec);
    o["scheme"] = proto::scheme_name(spec.scheme);
    o["ok"] = r.ok;
    o["result"] = r.ok ? "ok" : "error";
    o["error"] = r.ok ? json::value(nullptr) : json::value(r.error);
    o["error_type"] = r.error_type.empty() ? json::value(nullptr) : json::value(r.error_type);
    o["latency_ms"] = round3(r.latency_ms);
    o["dial_ms"] = r.dial_ms < 0 ? json::value(nullptr) : json::value(round3(r.dial_ms));
    o["status"] = r.status == 0 ? json::value(nullptr) : json::value(r.status);
    o["exit_ip"] = r.exit_ip.empty() ? json::value(nullptr) : json::value(r.exit_ip);
    o["tags"] = admin::exit_tags_json(spec);
    arr.push_back(std::move(o));
  }
  std::string s = json::serialize(arr);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

void print_table(const check_job& job) {
  std::vector<std::array<std::string, 7>> rows;
  rows.push_back({"EXIT", "RESULT", "LATENCY", "STATUS", "EXIT IP", "TAGS", "ERROR"});
  std::size_t ok = 0;
  for (std::size_t i = 0; i < job.results.size(); ++i) {
    const auto& spec = job.snap->exits()[i]->spec();
    const auto& r = job.results[i];
    ok += r.ok ? 1 : 0;
    rows.push_back({sanitize(spec.id), r.ok ? "ok" : "error",
                    r.latency_ms < 10 ? fmt::format("{:.1f} ms", r.latency_ms) : fmt::format("{:.0f} ms", r.latency_ms),
                    r.status ? std::to_string(r.status) : "-", r.exit_ip.empty() ? "-" : r.exit_ip,
                    describe_tags(spec).empty() ? "-" : sanitize(describe_tags(spec)), r.error});
  }
  std::array<std::size_t, 7> width{};
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) {
        line += std::string(width[c] - row[c].size() + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("%zu of %zu exits ok\n", ok, job.results.size());
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "exitpool check: %s\n", msg.c_str());
  return 2;
}

int check(const check_options& o) {
  if (o.pool_file.empty()) {
    return usage_error("--pool FILE is required");
  }
  if (o.url.empty()) {
    return usage_error(
        "--url is required: an http:// endpoint you control that answers with the caller's IP address as the "
        "first line of its body (e.g. nginx: return 200 \"$remote_addr\\n\";). There is no default, so that a "
        "check never contacts a service you did not choose.");
  }
  auto target = proto::parse_absolute_target(o.url);
  if (!target) {
    return usage_error(fmt::format("--url {}: expected http://host[:port][/path]", sanitize(o.url)));
  }
  if (target->scheme != "http") {
    return usage_error(fmt::format("--url {}: only http:// check URLs are supported for now", sanitize(o.url)));
  }
  if (o.concurrency < 1) {
    return usage_error("--concurrency must be at least 1");
  }
  if (!(o.timeout_s > 0) || o.timeout_s > 86400) {
    return usage_error("--timeout must be a positive number of seconds");
  }
  // Pool file errors throw; main prints "exitpool: FILE:LINE: message" and exits 2.
  auto specs = proto::parse_pool_text(read_file(o.pool_file), o.pool_file);

  auto job = std::make_shared<check_job>();
  job->snap = pool::snapshot::build(std::move(specs));
  job->results.resize(job->snap->size());
  job->target = std::move(*target);
  job->url = o.url;
  const auto& w = job->target.where;
  if (w.port != 80) {
    job->host_header = proto::format_authority(w.host, w.port);
  } else {
    job->host_header = w.host.find(':') != std::string::npos ? "[" + w.host + "]" : w.host;
  }
  job->timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  auto tls_verified = make_tls_context(true, o.ca_file);
  auto tls_insecure = make_tls_context(false, "");
  job->opts.timeout = job->timeout;
  job->opts.tls_verified = &tls_verified;
  job->opts.tls_insecure = &tls_insecure;

  asio::io_context io(1);
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(o.concurrency), job->results.size());
  for (std::size_t k = 0; k < workers; ++k) {
    asio::co_spawn(io, worker(job), [](std::exception_ptr e) {
      if (e) {
        std::rethrow_exception(e);  // out of io.run(): a bug, reported by main
      }
    });
  }
  io.run();

  if (o.json) {
    print_json(*job);
  } else {
    print_table(*job);
  }
  std::fflush(stdout);
  const bool all_ok = std::all_of(job->results.begin(), job->results.end(), [](const auto& r) { return r.ok; });
  return all_ok ? 0 : 1;
}

}  // namespace

std::string first_line_ip(std::string_view body) {
  std::string_view line = body.substr(0, body.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.remove_suffix(1);
  }
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    line.remove_prefix(1);
  }
  if (line.empty() || line.size() > 64) {
    return "";
  }
  error_code ec;
  auto addr = asio::ip::make_address(std::string(line), ec);
  return ec ? std::string() : addr.to_string();
}

std::string decode_chunked(std::string_view raw) {
  std::string out;
  for (;;) {
    const auto eol = raw.find('\n');
    if (eol == std::string_view::npos) {
      return out;
    }
    std::string_view size_line = raw.substr(0, eol);
    size_line = size_line.substr(0, size_line.find(';'));
    std::uint64_t size = 0;
    bool any = false;
    for (char c : size_line) {
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) {
        break;  // CR, white space before an extension
      }
      if (size > (std::uint64_t{1} << 40)) {
        return out;
      }
      size = size * 16 + static_cast<std::uint64_t>(d);
      any = true;
    }
    if (!any || size == 0) {
      return out;
    }
    raw.remove_prefix(eol + 1);
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(size, raw.size()));
    out.append(raw.substr(0, take));
    if (raw.size() < size) {
      return out;
    }
    raw.remove_prefix(take);
    // The CRLF after the chunk data.
    if (!raw.empty() && raw.front() == '\r') {
      raw.remove_prefix(1);
    }
    if (!raw.empty() && raw.front() == '\n') {
      raw.remove_prefix(1);
    }
  }
}

void add_check(CLI::App& app, std::function<int()>& run) {
  auto o = std::make_shared<check_options>();
  auto* cmd = app.add_subcommand(
      "check",
      "Check every exit of a pool once, concurrently: dial it, fetch --url through it, report result, latency "
      "and the exit IP the target saw. Exit code 0: all ok, 1: some failed, 2: usage or pool file error");
  cmd->add_option("--config", "TOML config file; keys are the long option names (pool = \"pool.txt\")");
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--pool", o->pool_file, "Pool file, one exit per line (required)");
  cmd->add_option("--url", o->url,
                  "Required. An http:// URL you control that answers with the caller's IP address as the first "
                  "line of its body (nginx: return 200 \"$remote_addr\\n\";). No default: a check never "
                  "contacts a service you did not choose");
  cmd->add_option("--timeout", o->timeout_s, "Seconds for each exit's whole check (dial, request, response)")
      ->capture_default_str();
  cmd->add_option("--concurrency", o->concurrency, "Exits checked at the same time")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON array (one object per exit) instead of a table");
  cmd->add_option("--ca-file", o->ca_file, "Extra CA certificates (PEM) for verifying https:// exits");
  cmd->callback([&run, o] { run = [o] { return check(*o); }; });
}

}  // namespace exitpool::cli
