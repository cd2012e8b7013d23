// tunnel_load: a small epoll load generator for proxy tunnels (bench/gateway/run.sh builds it).
//
//   tunnel_load --mode connect|socks5|direct --proxy 127.0.0.1:P --target 127.0.0.1:O
//               [--conc 64] [--duration 10] [--threads 1] [--path /]
//       Each of --conc workers loops: connect, handshake (HTTP CONNECT, or SOCKS5 no-auth CONNECT
//       to an IPv4 target; none for direct), one `GET PATH` with `Connection: close`, read the
//       response to EOF, close. Prints one line:
//         tunnels=N errors=E secs=S rate=R p50_us=X p99_us=Y
//
//   --name HOST (connect mode): ask the proxy for HOST:PORT (PORT from --target) instead of the
//       target's address, so that the proxy resolves it; each "{n}" in HOST becomes a number unique to
//       the tunnel (a name never asked before: a cold lookup each time).
//
//   tunnel_load --mode connect|socks5 --proxy ... --target ... --hold N [--hold-secs 30]
//       Opens N tunnels (at most --conc handshakes in flight), sends one keep-alive GET through each,
//       reads the response, then keeps them open and idle. Prints "READY open=N failed=F" when done
//       (or when --hold-deadline seconds, default 120, have passed: the rest count as failed), then
//       holds until stdin closes, SIGTERM, or --hold-secs pass. Only a pipe, socket or terminal on
//       stdin is watched: a script's background job has /dev/null there, which would "close" at once
//       and end the hold before anyone measured it.
//
// The target's port is connected from 127.0.0.1; latency is measured from connect() to EOF.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

std::atomic<unsigned long> name_counter{0};  // --name's "{n}", across the worker threads

enum class mode { connect, socks5, direct };

struct options {
  mode m = mode::connect;
  sockaddr_in proxy{};
  sockaddr_in target{};
  std::string target_text;
  std::string name;  // --name: CONNECT to this host (with "{n}" numbered per tunnel) instead
  std::string path = "/";
  int conc = 64;
  double duration = 10;
  int threads = 1;
  long hold = 0;
  double hold_secs = 30;
  double hold_deadline = 120;  // give up opening after this many seconds
};

sockaddr_in parse_addr(const std::string& s) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "bad address %s\n", s.c_str());
    std::exit(2);
  }
  std::string host = s.substr(0, colon);
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "bad IPv4 address %s\n", host.c_str());
    std::exit(2);
  }
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1)));
  return a;
}

enum class st { connecting, hs1, hs2, request, response, idle };

struct conn {
  int fd = -1;
  st state = st::connecting;
  std::string out;  // pending bytes to write
  size_t out_off = 0;
  std::string in;
  size_t need = 0;  // socks: bytes to read for this step
  clk::time_point start;
};

struct worker_result {
  uint64_t done = 0;
  uint64_t errors = 0;
  std::vector<uint32_t> lat_us;
  long opened = 0;
  long failed = 0;
};

std::atomic<bool> g_stop{false};

class worker {
 public:
  worker(const options& o, int conc, long hold) : o_(o), conc_(conc), hold_(hold) {
    ep_ = epoll_create1(0);
    conns_.resize(static_cast<size_t>(hold > 0 ? hold : conc));
  }

  void run_load(clk::time_point end) {
    end_ = end;
    for (int i = 0; i < conc_; ++i)
      start(static_cast<size_t>(i));
    std::vector<epoll_event> evs(1024);
    while (clk::now() < end_ && !g_stop.load(std::memory_order_relaxed)) {
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
      for (int i = 0; i < n; ++i)
        on_event(evs[i].data.u32, evs[i].events);
    }
    for (auto& c : conns_) {
      if (c.fd >= 0)
        close(c.fd);
      c.fd = -1;
    }
  }

  // Opens hold_ tunnels with at most conc_ handshakes in flight; returns when all are idle or failed.
  void run_hold(double deadline_s) {
    holding_ = true;
    size_t next = 0;
    size_t total = static_cast<size_t>(hold_);
    std::vector<epoll_event> evs(1024);
    auto deadline = clk::now() + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(deadline_s));
    while (static_cast<size_t>(res.opened + res.failed) < total && clk::now() < deadline) {
      while (next < total && inflight_ < conc_) {
        start(next++);
      }
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
      for (int i = 0; i < n; ++i)
        on_event(evs[i].data.u32, evs[i].events);
    }
  }

  worker_result res;

 private:
  void start(size_t idx) {
    conn& c = conns_[idx];
    c = conn{};
    c.start = clk::now();
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      fail(idx);
      return;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const sockaddr_in& dst = o_.m == mode::direct ? o_.target : o_.proxy;
    int r = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst);
    if (r < 0 && errno != EINPROGRESS) {
      fail(idx);
      return;
    }
    ++inflight_;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u32 = static_cast<uint32_t>(idx);
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    c.state = st::connecting;
  }

  // --name with its "{n}" numbered, and the target's port.
  std::string named_target() {
    std::string host = o_.name;
    for (auto at = host.find("{n}"); at != std::string::npos; at = host.find("{n}")) {
      host.replace(at, 3, std::to_string(name_counter.fetch_add(1, std::memory_order_relaxed)));
    }
    return host + ":" + std::to_string(ntohs(o_.target.sin_port));
  }

  std::string request(bool keepalive) const {
    return "GET " + o_.path + " HTTP/1.1\r\nHost: " + o_.target_text + "\r\nUser-Agent: tunnel_load\r\n" +
           (keepalive ? "" : "Connection: close\r\n") + "\r\n";
  }

  void send(size_t idx, std::string data, st next, size_t need = 0) {
    conn& c = conns_[idx];
    c.out = std::move(data);
    c.out_off = 0;
    c.in.clear();
    c.need = need;
    c.state = next;
    flush(idx);
  }

  bool flush(size_t idx) {
    conn& c = conns_[idx];
    while (c.out_off < c.out.size()) {
      ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN)
          return true;
        fail(idx);
        return false;
      }
      c.out_off += static_cast<size_t>(w);
    }
    return true;
  }

  void after_connect(size_t idx) {
    switch (o_.m) {
      case mode::direct:
        send(idx, request(holding_), st::request);
        break;
      case mode::connect: {
        const std::string to = o_.name.empty() ? o_.target_text : named_target();
        send(idx, "CONNECT " + to + " HTTP/1.1\r\nHost: " + to + "\r\n\r\n", st::hs1);
        break;
      }
      case mode::socks5:
        send(idx, std::string("\x05\x01\x00", 3), st::hs1, 2);
        break;
    }
  }

  void on_event(uint32_t idx, uint32_t events) {
    conn& c = conns_[idx];
    if (c.fd < 0)
      return;
    if (c.state == st::connecting) {
      if (events & (EPOLLERR | EPOLLHUP)) {
        fail(idx);
        return;
      }
      if (events & EPOLLOUT) {
        after_connect(idx);
      }
      return;
    }
    if ((events & EPOLLOUT) && c.out_off < c.out.size()) {
      if (!flush(idx))
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      on_readable(idx);
    }
  }

  void on_readable(size_t idx) {
    conn& c = conns_[idx];
    char buf[16384];
    for (;;) {
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r < 0) {
        if (errno == EAGAIN)
          return;
        fail(idx);
        return;
      }
      if (r == 0) {
        if (c.state == st::request && !holding_) {
          finish(idx);
        } else {
          fail(idx);
        }
        return;
      }
      if (c.state == st::request && !holding_) {
        // Load mode: only count bytes; the response ends at EOF (Connection: close).
        c.need += static_cast<size_t>(r);
        continue;
      }
      c.in.append(buf, static_cast<size_t>(r));
      if (!progress(idx))
        return;
    }
  }

  // Handshake steps; false when the connection was finished or failed.
  bool progress(size_t idx) {
    conn& c = conns_[idx];
    switch (c.state) {
      case st::hs1:
        if (o_.m == mode::connect) {
          auto end = c.in.find("\r\n\r\n");
          if (end == std::string::npos)
            return true;
          if (c.in.compare(0, 12, "HTTP/1.1 200") != 0 && c.in.compare(0, 12, "HTTP/1.0 200") != 0) {
            fail(idx);
            return false;
          }
          if (c.in.size() != end + 4) {  // bytes after the head: not expected before our GET
            fail(idx);
            return false;
          }
          send(idx, request(holding_), st::request);
          return true;
        }
        if (c.in.size() < 2)
          return true;
        if (c.in[0] != 5 || c.in[1] != 0) {
          fail(idx);
          return false;
        }
        {
          std::string req("\x05\x01\x00\x01", 4);
          req.append(reinterpret_cast<const char*>(&o_.target.sin_addr), 4);
          req.append(reinterpret_cast<const char*>(&o_.target.sin_port), 2);
          send(idx, req, st::hs2, 10);
        }
        return true;
      case st::hs2:
        if (c.in.size() < 10)
          return true;
        if (c.in[1] != 0) {
          fail(idx);
          return false;
        }
        send(idx, request(holding_), st::request);
        return true;
      case st::request: {  // hold mode: read one keep-alive response by Content-Length
        auto end = c.in.find("\r\n\r\n");
        if (end == std::string::npos)
          return true;
        size_t len = 0;
        std::string head = c.in.substr(0, end);
        for (auto& ch : head)
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        auto p = head.find("content-length:");
        if (p != std::string::npos)
          len = std::strtoul(head.c_str() + p + 15, nullptr, 10);
        if (c.in.size() < end + 4 + len)
          return true;
        c.state = st::idle;
        ++res.opened;
        --inflight_;
        epoll_event ev{};
        ev.events = EPOLLRDHUP;
        ev.data.u32 = static_cast<uint32_t>(idx);
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        c.in.clear();
        c.in.shrink_to_fit();
        c.out.clear();
        c.out.shrink_to_fit();
        return false;
      }
      default:
        return true;
    }
  }

  void finish(size_t idx) {
    conn& c = conns_[idx];
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - c.start).count();
    close(c.fd);
    c.fd = -1;
    --inflight_;
    if (c.need == 0) {
      ++res.errors;
    } else {
      ++res.done;
      res.lat_us.push_back(static_cast<uint32_t>(us));
    }
    if (clk::now() < end_)
      start(idx);
  }

  void fail(size_t idx) {
    conn& c = conns_[idx];
    bool was_inflight = c.fd >= 0 && c.state != st::idle;
    if (c.fd >= 0)
      close(c.fd);
    c.fd = -1;
    if (was_inflight)
      --inflight_;
    if (holding_) {
      if (c.state == st::idle)
        --res.opened;
      ++res.failed;
      c.state = st::idle;
      return;
    }
    ++res.errors;
    if (clk::now() < end_) {
      if (res.errors % 1000 == 999)
        usleep(1000);
      start(idx);
    }
  }

  const options& o_;
  int conc_;
  long hold_;
  int ep_;
  bool holding_ = false;
  int inflight_ = 0;
  clk::time_point end_{};
  std::vector<conn> conns_;
};

void on_signal(int) {
  g_stop.store(true);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  std::string proxy = "127.0.0.1:8080", target;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--mode") {
      std::string m = val();
      o.m = m == "socks5" ? mode::socks5 : m == "direct" ? mode::direct : mode::connect;
    } else if (a == "--proxy") {
      proxy = val();
    } else if (a == "--target") {
      target = val();
    } else if (a == "--name") {
      o.name = val();
    } else if (a == "--path") {
      o.path = val();
    } else if (a == "--conc") {
      o.conc = std::atoi(val().c_str());
    } else if (a == "--duration") {
      o.duration = std::atof(val().c_str());
    } else if (a == "--threads") {
      o.threads = std::max(1, std::atoi(val().c_str()));
    } else if (a == "--hold") {
      o.hold = std::atol(val().c_str());
    } else if (a == "--hold-deadline") {
      o.hold_deadline = std::atof(val().c_str());
    } else if (a == "--hold-secs") {
      o.hold_secs = std::atof(val().c_str());
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (target.empty()) {
    std::fprintf(stderr, "--target is required\n");
    return 2;
  }
  o.proxy = parse_addr(proxy);
  o.target = parse_addr(target);
  o.target_text = target;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  if (o.hold > 0) {
    worker w(o, o.conc, o.hold);
    w.run_hold(o.hold_deadline);
    std::printf("READY open=%ld failed=%ld\n", w.res.opened, o.hold - w.res.opened);
    std::fflush(stdout);
    auto until = clk::now() + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.hold_secs));
    struct stat in {};
    const bool watch_stdin = isatty(0) || (fstat(0, &in) == 0 && (S_ISFIFO(in.st_mode) || S_ISSOCK(in.st_mode)));
    pollfd p{0, POLLIN, 0};
    while (!g_stop.load() && clk::now() < until) {
      int r = poll(&p, watch_stdin ? 1 : 0, 100);
      if (r > 0) {
        char b[64];
        if (read(0, b, sizeof b) <= 0)
          break;
      }
    }
    return 0;
  }

  auto t0 = clk::now();
  auto end = t0 + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.duration));
  std::vector<std::unique_ptr<worker>> ws;
  for (int t = 0; t < o.threads; ++t) {
    int c = o.conc / o.threads + (t < o.conc % o.threads ? 1 : 0);
    ws.push_back(std::make_unique<worker>(o, c, 0));
  }
  std::vector<std::thread> th;
  for (auto& w : ws)
    th.emplace_back([&w, end] { w->run_load(end); });
  for (auto& t : th)
    t.join();
  double secs = std::chrono::duration<double>(clk::now() - t0).count();
  uint64_t done = 0, errors = 0;
  std::vector<uint32_t> lat;
  for (auto& w : ws) {
    done += w->res.done;
    errors += w->res.errors;
    lat.insert(lat.end(), w->res.lat_us.begin(), w->res.lat_us.end());
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) -> uint32_t {
    if (lat.empty())
      return 0;
    return lat[std::min(lat.size() - 1, static_cast<size_t>(q * static_cast<double>(lat.size())))];
  };
  std::printf("tunnels=%llu errors=%llu secs=%.2f rate=%.0f p50_us=%u p99_us=%u\n",
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(errors), secs,
              static_cast<double>(done) / secs, pct(0.50), pct(0.99));
  return 0;
}
