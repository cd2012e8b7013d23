#include "fleet/redis_state.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <charconv>
#include <functional>

#include "pool/sticky.hpp"

namespace exitpool::fleet {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_queue = 100000;     // queued writes while Redis is slow or down
constexpr std::size_t max_grants = 1 << 18;   // (exit, host) grant records held at once
constexpr std::size_t max_host = 253;         // longest host name shared (DNS limit)
constexpr std::size_t max_session_key = 256;  // longest session key shared
constexpr auto grant_life = 1s;               // unspent tokens are dropped after this
constexpr auto grant_idle = 10s;              // a grant record unused this long is dropped
constexpr std::size_t max_marks = 1 << 16;    // remote bans / ejections whose origin is remembered

std::int64_t ns_of(pool::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
pool::time_point tp_of(std::int64_t ns) {
  return pool::time_point(std::chrono::duration_cast<pool::clock::duration>(std::chrono::nanoseconds(ns)));
}

std::string hex(std::uint64_t v) {
  return fmt::format("{:016x}", v);
}

// Scripts. Times come from Redis TIME, so gateway clocks do not matter; the rate keys of
// one exit share the hash tag {exit hash}, so a cluster would keep them in one slot.

// GCRA grant: KEYS[1] the bucket; ARGV interval (us), burst, tokens wanted (the batch).
// A batch is handed out ahead of time, so the tolerance is burst + batch - 1 tokens rather
// than burst: with burst 1 a plain GCRA could grant one token per call, and one call per
// tick would cap a gateway at 50/s whatever the rate. Over a window T the bucket grants at
// most rate * T + burst + batch - 1; each gateway may also spend what it was granted before.
// Returns {granted, wait_us}: wait_us is when a next call could be granted a token.
constexpr std::string_view script_gcra = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local room = math.floor(((burst + want - 1) * interval - (tat - now)) / interval)
local grant = math.max(0, math.min(want, room))
tat = tat + grant * interval
if grant > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
local wait = tat - now - (burst + want - 2) * interval
if wait < 0 then wait = 0 end
return {grant, math.floor(wait)}
)lua";

// Records an event in a sorted set scored by its end (Redis ms) and publishes it.
// KEYS[1] the set; ARGV member, remaining ms, channel, message.
constexpr std::string_view script_publish = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = now + tonumber(ARGV[2])
local old = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if score > old then redis.call('ZADD', KEYS[1], score, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
)lua";

// What is in force in a sorted set: {member, remaining ms, ...}. KEYS[1] the set.
constexpr std::string_view script_in_force = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local r = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES')
for i = 2, #r, 2 do r[i] = tostring(tonumber(r[i]) - now) end
return r
)lua";

// Session claim: KEYS[1] the session; ARGV generation, ttl ms. Value "GEN ANCHORHEX".
// Returns {generation, anchor hex, remaining ms}.
constexpr std::string_view script_claim = R"lua(
local v = redis.call('GET', KEYS[1])
if v then
  local gen, anchor = string.match(v, '^(%d+) (%x+)$')
  if gen and tonumber(gen) >= tonumber(ARGV[1]) then
    return {gen, anchor, redis.call('PTTL', KEYS[1])}
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' 0', 'PX', ARGV[2])
return {ARGV[1], '0', tonumber(ARGV[2])}
)lua";

// Session anchor: compare the generation, set the anchor keeping the lifetime, publish.
// KEYS[1] the session; ARGV generation, anchor hex, channel, message head, session key.
constexpr std::string_view script_anchor = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return -2 end
local gen = string.match(v, '^(%d+) ')
if gen ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'KEEPTTL')
local ttl = redis.call('PTTL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. ttl .. '\n' .. ARGV[5])
return ttl
)lua";

// Heartbeat: KEYS[1] the fleet set, KEYS[2] this gateway's key; ARGV id, info, ttl ms,
// channel. A gateway new to the set publishes "j\nID". Returns {live gateways, ms until the
// soonest other gateway's heartbeat ends (-1: none)}.
constexpr std::string_view script_heartbeat = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[4], 'j\n' .. ARGV[1])
end
local soonest = -1
local r = redis.call('ZRANGE', KEYS[1], 0, 1, 'WITHSCORES')
for i = 1, #r, 2 do
  if r[i] ~= ARGV[1] then
    soonest = tonumber(r[i + 1]) - now
    break
  end
end
return {redis.call('ZCARD', KEYS[1]), soonest}
)lua";

// Leave: KEYS[1] the fleet set, KEYS[2] this gateway's key; ARGV id, channel.
constexpr std::string_view script_leave = R"lua(
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], 'l\n' .. ARGV[1])
return 1
)lua";

// Fleet listing: {id, info, remaining ms, ...}. KEYS[1] the fleet set; ARGV key prefix.
constexpr std::string_view script_fleet = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #r, 2 do
  local info = redis.call('GET', ARGV[1] .. r[i])
  if info then
    out[#out + 1] = r[i]
    out[#out + 1] = info
    out[#out + 1] = tostring(tonumber(r[i + 1]) - now)
  end
end
return out
)lua";

enum script_id : std::size_t { s_gcra, s_publish, s_in_force, s_claim, s_anchor, s_heartbeat, s_fleet, s_count };
constexpr std::array<std::string_view, s_count> scripts = {
    script_gcra, script_publish, script_in_force, script_claim, script_anchor, script_heartbeat, script_fleet};

std::vector<std::string> evalsha(const std::string& sha, std::vector<std::string> keys, std::vector<std::string> args) {
  std::vector<std::string> cmd{"EVALSHA", sha, std::to_string(keys.size())};
  for (auto& k : keys) {
    cmd.push_back(std::move(k));
  }
  for (auto& a : args) {
    cmd.push_back(std::move(a));
  }
  return cmd;
}

asio::awaitable<redis_error> load_scripts(connection& c, std::array<std::string, s_count>& shas,
                                          std::chrono::milliseconds timeout) {
  std::vector<std::vector<std::string>> cmds;
  for (auto s : scripts) {
    cmds.push_back({"SCRIPT", "LOAD", std::string(s)});
  }
  std::vector<reply> replies;
  if (auto err = co_await c.exec(std::move(cmds), replies, timeout)) {
    co_return err;
  }
  for (std::size_t i = 0; i < s_count; ++i) {
    if (replies[i].type != reply::kind::string) {
      c.close();
      co_return redis_error{redis_errc::protocol, fmt::format("SCRIPT LOAD refused: {}", replies[i].str)};
    }
    shas[i] = replies[i].str;
  }
  co_return redis_error{};
}

std::optional<long long> to_ll(std::string_view s) {
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<std::uint64_t> to_u64(std::string_view s, int base = 10) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

// Splits off the first `n` newline-separated fields; the rest (may hold anything) is last.
std::optional<std::vector<std::string_view>> split_fields(std::string_view s, std::size_t n) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto nl = s.find('\n');
    if (nl == std::string_view::npos) {
      return std::nullopt;
    }
    out.push_back(s.substr(0, nl));
    s.remove_prefix(nl + 1);
  }
  out.push_back(s);
  return out;
}

// EVAL on a connection of its own, on a private io_context (startup, shutdown, `exitpool
// fleet`: never the sync thread's connections). `script_and_args`: script, numkeys, keys, args.
redis_error eval_once(const redis_url& url, std::vector<std::string> script_and_args, reply& out,
                      std::chrono::milliseconds timeout) {
  asio::io_context io(1);
  redis_error err{redis_errc::timeout, "no answer"};
  script_and_args.insert(script_and_args.begin(), "EVAL");
  asio::co_spawn(
      io,
      [](asio::io_context& io, redis_url url, std::vector<std::string> cmd, std::chrono::milliseconds t, reply& out,
         redis_error& err) -> asio::awaitable<void> {
        connection c(io.get_executor());
        err = co_await c.connect(std::move(url), t);
        if (err) {
          co_return;
        }
        std::vector<std::vector<std::string>> cmds;
        cmds.push_back(std::move(cmd));
        std::vector<reply> r;
        err = co_await c.exec(std::move(cmds), r, t);
        c.close();
        if (!err) {
          out = std::move(r[0]);
        }
      }(io, url, std::move(script_and_args), timeout, out, err),
      asio::detached);
  io.run_for(timeout + 500ms);
  return err;
}

}  // namespace

// Wire format of an event (fields separated by '\n'; the last may contain anything):
//   b ORIGIN REMAINING_MS EXIT_ID HOST
//   e ORIGIN REMAINING_MS EXIT_ID
//   a ORIGIN GENERATION ANCHOR_HEX REMAINING_MS SESSION_KEY
//   j ORIGIN            (joined the live set)
//   l ORIGIN            (left it)
std::optional<fleet_event> parse_event(std::string_view payload) {
  if (payload.size() < 2 || payload[1] != '\n') {
    return std::nullopt;
  }
  fleet_event ev;
  const char k = payload[0];
  payload.remove_prefix(2);
  if (k == 'j' || k == 'l') {
    if (payload.empty() || payload.find('\n') != std::string_view::npos) {
      return std::nullopt;
    }
    ev.type = k == 'j' ? fleet_event::kind::join : fleet_event::kind::leave;
    ev.origin = payload;
    return ev;
  }
  if (k == 'b' || k == 'e') {
    auto f = split_fields(payload, k == 'b' ? 3 : 2);
    if (!f) {
      return std::nullopt;
    }
    auto ms = to_ll((*f)[1]);
    if (!ms || (*f)[0].empty() || (*f)[2].empty()) {
      return std::nullopt;
    }
    ev.type = k == 'b' ? fleet_event::kind::ban : fleet_event::kind::ejection;
    ev.origin = (*f)[0];
    ev.remaining_ms = *ms;
    ev.exit_id = (*f)[2];
    if (k == 'b') {
      ev.host = (*f)[3];
      if (ev.host.empty() || ev.host.size() > max_host) {
        return std::nullopt;
      }
    }
    return ev;
  }
  if (k == 'a') {
    auto f = split_fields(payload, 4);
    if (!f) {
      return std::nullopt;
    }
    auto gen = to_u64((*f)[1]);
    auto anchor = to_u64((*f)[2], 16);
    auto ms = to_ll((*f)[3]);
    if (!gen || !anchor || !ms || (*f)[0].empty() || (*f)[4].empty()) {
      return std::nullopt;
    }
    ev.type = fleet_event::kind::anchor;
    ev.origin = (*f)[0];
    ev.generation = *gen;
    ev.anchor = *anchor;
    ev.remaining_ms = *ms;
    ev.session = (*f)[4];
    return ev;
  }
  return std::nullopt;
}

int grant_batch(double rate) {
  return std::clamp(static_cast<int>(rate / 10), 1, 4096);
}

// ---- the background task -------------------------------------------------------------------

class redis_state::sync {
 public:
  explicit sync(redis_state& st) : st_(st), io_(1) {}

  asio::io_context& io() { return io_; }

  // The startup check: one connection, within `timeout`, on this thread.
  redis_error probe(std::chrono::milliseconds timeout) {
    redis_error out{redis_errc::timeout, "no answer"};
    asio::io_context io(1);
    auto c = std::make_shared<connection>(io.get_executor());
    asio::co_spawn(
        io,
        [](std::shared_ptr<connection> c, redis_url url, std::chrono::milliseconds t,
           redis_error& out) -> asio::awaitable<void> {
          out = co_await c->connect(std::move(url), t);
          c->close();
        }(c, st_.cfg_.url, timeout, out),
        asio::detached);
    io.run_for(timeout + 500ms);
    return out;
  }

  asio::awaitable<void> run() {
    auto backoff = 100ms;
    bool logged_down = false;
    for (;;) {
      auto cmd = std::make_shared<connection>(io_.get_executor());
      auto sub = std::make_shared<connection>(io_.get_executor());
      redis_error err = co_await cmd->connect(st_.cfg_.url, 2s);
      if (!err) {
        err = co_await sub->connect(st_.cfg_.url, 2s);
      }
      if (!err) {
        err = co_await load_scripts(*cmd, shas_, st_.cfg_.command_timeout);
      }
      if (!err) {
        // Subscribe before reading what is in force: nothing falls between the two.
        // (Built before the co_await: GCC 12 rejects string literals in a braced list there.)
        std::vector<std::vector<std::string>> subscribe{{std::string("SUBSCRIBE"), std::string(key_events)}};
        std::vector<reply> r;
        err = co_await sub->exec(std::move(subscribe), r, st_.cfg_.command_timeout);
      }
      if (!err) {
        err = co_await resync(*cmd);
      }
      if (err) {
        cmd->close();
        sub->close();
        if (!logged_down) {
          logged_down = true;
          spdlog::warn(
              "state backend {} unreachable ({}: {}): serving from local state, limits divided by the last known "
              "fleet size ({}); retrying in the background",
              redacted(st_.cfg_.url), redis_errc_name(err.code), err.message, st_.fleet_size());
        }
        set_up(false);
        asio::steady_timer t(io_, backoff);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
        continue;
      }
      backoff = 100ms;
      if (logged_down) {
        spdlog::info("state backend {} reachable again: fleet state shared ({} gateways)", redacted(st_.cfg_.url),
                     st_.fleet_size());
      }
      logged_down = false;
      set_up(true);
      auto sub_alive = std::make_shared<bool>(true);
      asio::co_spawn(io_, subscriber(sub, sub_alive), asio::detached);
      err = co_await serve(*cmd, sub_alive);
      st_.commands_.fetch_add(cmd->commands_sent() + sub->commands_sent(), std::memory_order_relaxed);
      cmd->close();
      sub->close();
      set_up(false);
      logged_down = true;
      spdlog::warn(
          "state backend {} lost ({}: {}): serving from local state, limits divided by the last known fleet size "
          "({}); reconnecting",
          redacted(st_.cfg_.url), redis_errc_name(err.code), err.message, st_.fleet_size());
    }
  }

 private:
  void set_up(bool up) {
    st_.up_.store(up, std::memory_order_relaxed);
    if (st_.cfg_.up_gauge != nullptr) {
      st_.cfg_.up_gauge->store(up ? 1 : 0, std::memory_order_relaxed);
    }
  }

  void set_fleet(long long n) {
    const int size = static_cast<int>(std::clamp<long long>(n, 1, 100000));
    st_.fleet_.store(size, std::memory_order_relaxed);
    if (st_.cfg_.fleet_gauge != nullptr) {
      st_.cfg_.fleet_gauge->store(size, std::memory_order_relaxed);
    }
    apply_shares();
  }

  // Each exit's own bucket and cap become this gateway's share: rate / N (the fallback
  // while Redis is down) and max(1, cap / N). Again after a reload (a new snapshot).
  void apply_shares() {
    auto snap = st_.pool_.load();
    const int n = st_.fleet_size();
    if (snap == nullptr || (snap->serial() == applied_serial_ && n == applied_n_)) {
      return;
    }
    applied_serial_ = snap->serial();
    applied_n_ = n;
    const auto& full = st_.cfg_.limits;
    pool::limits_config share = full;
    share.per_exit_rate = full.per_exit_rate / n;
    share.burst = std::max(1.0, full.burst / n);
    share.per_exit_concurrency = full.per_exit_concurrency > 0 ? std::max(1, full.per_exit_concurrency / n) : 0;
    share.per_exit_host_rate = 0;
    for (const auto& e : snap->exits()) {
      e->apply_limits(share);
    }
    if (full.per_exit_host_rate > 0) {
      st_.fallback_hosts_.store(std::make_shared<pool::host_limits>(full.per_exit_host_rate / n, share.burst));
    }
  }

  asio::awaitable<redis_error> exec(connection& c, std::vector<std::vector<std::string>> cmds,
                                    std::vector<reply>& out) {
    auto err = co_await c.exec(cmds, out, st_.cfg_.command_timeout);
    if (err) {
      co_return err;
    }
    // NOSCRIPT (a SCRIPT FLUSH, or a restarted Redis we reached before noticing): load the
    // scripts again and send those commands once more.
    std::vector<std::size_t> again;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i].is_error() && out[i].str.starts_with("NOSCRIPT")) {
        again.push_back(i);
      }
    }
    if (again.empty()) {
      co_return redis_error{};
    }
    std::array<std::string, s_count> old = shas_;
    if (auto lerr = co_await load_scripts(c, shas_, st_.cfg_.command_timeout)) {
      co_return lerr;
    }
    std::vector<std::vector<std::string>> retry;
    for (auto i : again) {
      auto cmd = cmds[i];
      for (std::size_t s = 0; s < s_count; ++s) {
        if (cmd.size() > 1 && cmd[1] == old[s]) {
          cmd[1] = shas_[s];
        }
      }
      retry.push_back(std::move(cmd));
    }
    std::vector<reply> r2;
    if (auto rerr = co_await c.exec(std::move(retry), r2, st_.cfg_.command_timeout)) {
      co_return rerr;
    }
    for (std::size_t k = 0; k < again.size(); ++k) {
      out[again[k]] = std::move(r2[k]);
    }
    co_return redis_error{};
  }

  std::vector<std::string> heartbeat_cmd() {
    return evalsha(
        shas_[s_heartbeat], {key_fleet, std::string(key_gateway) + st_.cfg_.gateway_id},
        {st_.cfg_.gateway_id, st_.cfg_.gateway_info, std::to_string(st_.cfg_.heartbeat_ttl.count()), key_events});
  }

  // A heartbeat's answer: the fleet size, and the next heartbeat in a second or when the
  // soonest other gateway's heartbeat ends, if sooner (a dead one is dropped at that moment).
  void heartbeat_done(const reply& r, pool::time_point now) {
    if (r.type != reply::kind::array || r.elements.size() != 2) {
      return;
    }
    set_fleet(r.elements[0].as_int(1));
    next_heartbeat_ = now + 1s;
    const long long soonest = r.elements[1].as_int(-1);
    if (soonest >= 0 && soonest < 1000) {
      next_heartbeat_ = now + std::chrono::milliseconds(soonest + 1);
    }
  }

  // After a (re)connect: every ban and ejection in force, and the fleet size.
  asio::awaitable<redis_error> resync(connection& c) {
    std::vector<std::vector<std::string>> cmds;
    cmds.push_back(evalsha(shas_[s_in_force], {std::string(key_bans)}, {}));
    cmds.push_back(evalsha(shas_[s_in_force], {std::string(key_ejections)}, {}));
    cmds.push_back(heartbeat_cmd());
    std::vector<reply> r;
    auto err = co_await exec(c, std::move(cmds), r);
    if (err) {
      co_return err;
    }
    const auto now = pool::clock::now();
    auto snap = st_.pool_.load();
    std::size_t bans = 0;
    std::size_t ejections = 0;
    // Members: "EXIT\nHOST\nORIGIN" (bans), "EXIT\nORIGIN" (ejections).
    for (std::size_t i = 0; i + 1 < r[0].elements.size(); i += 2) {
      auto f = split_fields(r[0].elements[i].str, 2);
      auto ms = r[0].elements[i + 1].as_int(-1);
      if (!f || ms <= 0) {
        continue;
      }
      if (const pool::exit* e = snap->find((*f)[0])) {
        apply_ban(*e, (*f)[1], std::string((*f)[2]), now + std::chrono::milliseconds(ms), now);
        ++bans;
      }
    }
    for (std::size_t i = 0; i + 1 < r[1].elements.size(); i += 2) {
      auto f = split_fields(r[1].elements[i].str, 1);
      auto ms = r[1].elements[i + 1].as_int(-1);
      if (!f || ms <= 0) {
        continue;
      }
      if (const pool::exit* e = snap->find((*f)[0])) {
        apply_ejection(*e, std::string((*f)[1]), now + std::chrono::milliseconds(ms));
        ++ejections;
      }
    }
    heartbeat_done(r[2], now);
    spdlog::info("state backend {}: resynchronised ({} bans and {} ejections in force; {} gateways)",
                 redacted(st_.cfg_.url), bans, ejections, st_.fleet_size());
    co_return redis_error{};
  }

  // A ban read back or received: ours (by origin) goes to the table only; another
  // gateway's is marked with its origin while it is the one in force.
  void apply_ban(const pool::exit& e, std::string_view host, const std::string& origin, pool::time_point until,
                 pool::time_point now) {
    if (origin == st_.cfg_.gateway_id) {
      st_.local_.ban(e, host, until);
      return;
    }
    st_.mark_remote_ban(e, host, origin, until, now);
  }

  void apply_ejection(const pool::exit& e, const std::string& origin, pool::time_point until) {
    if (origin == st_.cfg_.gateway_id) {
      const_cast<pool::exit&>(e).hold_down_until(until);
      return;
    }
    st_.mark_remote_ejection(e, origin, until);
  }

  void apply(const fleet_event& ev) {
    if (ev.origin == st_.cfg_.gateway_id) {
      return;
    }
    if (ev.type == fleet_event::kind::join || ev.type == fleet_event::kind::leave) {
      next_heartbeat_ = pool::clock::time_point::min();  // the fleet size, on the next tick
      return;
    }
    if (ev.remaining_ms <= 0) {
      return;
    }
    const auto now = pool::clock::now();
    const auto until = now + std::chrono::milliseconds(ev.remaining_ms);
    switch (ev.type) {
      case fleet_event::kind::ban:
      case fleet_event::kind::ejection: {
        auto snap = st_.pool_.load();
        const pool::exit* e = snap->find(ev.exit_id);
        if (e == nullptr) {
          return;
        }
        if (ev.type == fleet_event::kind::ban) {
          apply_ban(*e, ev.host, ev.origin, until, now);
        } else {
          apply_ejection(*e, ev.origin, until);
        }
        return;
      }
      case fleet_event::kind::anchor:
        st_.sessions_.adopt(ev.session, ev.generation, ev.anchor, until);
        return;
      default:
        return;
    }
  }

  asio::awaitable<void> subscriber(std::shared_ptr<connection> sub, std::shared_ptr<bool> alive) {
    for (;;) {
      reply r;
      if (auto err = co_await sub->read(r, 0ms)) {
        sub_error_ = fmt::format("subscription lost ({}: {})", redis_errc_name(err.code), err.message);
        *alive = false;
        co_return;
      }
      if (r.type == reply::kind::array && r.elements.size() == 3 && r.elements[0].str == "message") {
        if (auto ev = parse_event(r.elements[2].str)) {
          apply(*ev);
        }
      }
    }
  }

  // One tick: queued writes, token refills, the heartbeat; one pipeline.
  asio::awaitable<redis_error> serve(connection& c, std::shared_ptr<bool> sub_alive) {
    asio::steady_timer t(io_);
    auto next_sweep = pool::clock::now() + 1s;
    for (;;) {
      if (st_.stopping_.load(std::memory_order_relaxed)) {
        co_return redis_error{redis_errc::io, "stopping"};
      }
      if (!*sub_alive) {
        co_return redis_error{redis_errc::io, sub_error_};
      }
      const auto now = pool::clock::now();
      std::vector<std::vector<std::string>> cmds;
      std::vector<std::function<void(const reply&)>> done;

      std::deque<outbound> q;
      {
        std::lock_guard lock(st_.queue_mu_);
        q.swap(st_.queue_);
      }
      for (auto& o : q) {
        add_outbound(o, now, cmds, done);
      }
      add_refills(now, cmds, done);
      if (now >= next_heartbeat_) {
        next_heartbeat_ = now + 1s;
        cmds.push_back(heartbeat_cmd());
        done.emplace_back([this](const reply& r) { heartbeat_done(r, pool::clock::now()); });
      }
      if (now >= next_sweep) {
        next_sweep = now + 1s;
        sweep_grants(now);
        apply_shares();
      }
      if (!cmds.empty()) {
        std::vector<reply> replies;
        if (auto err = co_await exec(c, std::move(cmds), replies)) {
          // What was drained goes back, so no ban or ejection is lost.
          requeue(q);
          co_return err;
        }
        for (std::size_t i = 0; i < replies.size(); ++i) {
          done[i](replies[i]);
        }
      }
      t.expires_after(st_.cfg_.tick);
      auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        co_return redis_error{redis_errc::io, "stopping"};
      }
    }
  }

  void requeue(std::deque<outbound>& q) {
    std::lock_guard lock(st_.queue_mu_);
    for (auto it = q.rbegin(); it != q.rend(); ++it) {
      if ((it->type == outbound::kind::ban || it->type == outbound::kind::ejection) && st_.queue_.size() < max_queue) {
        st_.queue_.push_front(std::move(*it));
      }
    }
  }

  void add_outbound(const outbound& o, pool::time_point now, std::vector<std::vector<std::string>>& cmds,
                    std::vector<std::function<void(const reply&)>>& done) {
    const auto& id = st_.cfg_.gateway_id;
    switch (o.type) {
      case outbound::kind::ban:
      case outbound::kind::ejection: {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp_of(o.until_ns) - now).count();
        if (ms <= 0) {
          return;
        }
        const bool ban = o.type == outbound::kind::ban;
        std::string msg = ban ? fmt::format("b\n{}\n{}\n{}\n{}", id, ms, o.exit_id, o.text)
                              : fmt::format("e\n{}\n{}\n{}", id, ms, o.exit_id);
        std::string member = ban ? fmt::format("{}\n{}\n{}", o.exit_id, o.text, id) : o.exit_id + "\n" + id;
        cmds.push_back(evalsha(shas_[s_publish], {ban ? key_bans : key_ejections},
                               {std::move(member), std::to_string(ms), key_events, std::move(msg)}));
        done.emplace_back([](const reply&) {});
        return;
      }
      case outbound::kind::claim: {
        const std::string key = "exitpool:s:" + hex(pool::hash64(o.text));
        cmds.push_back(evalsha(shas_[s_claim], {key}, {std::to_string(o.generation), std::to_string(o.ttl_ms)}));
        done.emplace_back([this, session = o.text](const reply& r) {
          if (r.type != reply::kind::array || r.elements.size() != 3) {
            return;
          }
          auto gen = to_u64(r.elements[0].str);
          auto anchor = to_u64(r.elements[1].str, 16);
          auto ms = r.elements[2].as_int(-1);
          if (gen && anchor && ms > 0) {
            st_.sessions_.adopt(session, *gen, *anchor, pool::clock::now() + std::chrono::milliseconds(ms));
          }
        });
        return;
      }
      case outbound::kind::anchor: {
        const std::string key = "exitpool:s:" + hex(pool::hash64(o.text));
        const std::string anchor = fmt::format("{:x}", o.anchor);
        cmds.push_back(evalsha(shas_[s_anchor], {key},
                               {std::to_string(o.generation), anchor, key_events,
                                fmt::format("a\n{}\n{}\n{}\n", id, o.generation, anchor), o.text}));
        done.emplace_back([](const reply&) {});
        return;
      }
    }
  }

  void add_refills(pool::time_point now, std::vector<std::vector<std::string>>& cmds,
                   std::vector<std::function<void(const reply&)>>& done) {
    const auto& l = st_.cfg_.limits;
    for (auto& s : st_.grants_) {
      std::lock_guard lock(s.mu);
      for (auto& [k, g] : s.map) {
        if (!g.wanted) {
          continue;
        }
        g.wanted = false;
        const double rate = k.host_hash == 0 ? l.per_exit_rate : l.per_exit_host_rate;
        const auto interval_us = static_cast<long long>(1e6 / rate);
        std::string key = fmt::format("exitpool:r:{{{}}}", hex(k.exit_hash));
        if (k.host_hash != 0) {
          key += ":" + hex(k.host_hash);
        }
        const int batch = grant_batch(rate);
        cmds.push_back(evalsha(shas_[s_gcra], {std::move(key)},
                               {std::to_string(std::max(1LL, interval_us)), fmt::format("{}", std::max(1.0, l.burst)),
                                std::to_string(batch)}));
        done.emplace_back([this, k](const reply& r) { granted(k, r); });
      }
    }
    (void)now;
  }

  void granted(const grant_key& k, const reply& r) {
    if (r.type != reply::kind::array || r.elements.size() != 2) {
      return;
    }
    const long long n = r.elements[0].as_int(0);
    const long long wait_us = r.elements[1].as_int(0);
    const auto now = pool::clock::now();
    auto& s = st_.stripe_of(k);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(k);
    if (it == s.map.end()) {
      return;
    }
    grant& g = it->second;
    if (ns_of(now) >= g.valid_until_ns) {
      g.tokens = 0;
    }
    g.tokens += static_cast<int>(n);
    g.valid_until_ns = ns_of(now + grant_life);
    g.next_ns = ns_of(now + std::chrono::microseconds(wait_us));
    // Nothing granted: ask again when Redis says a token is due (next_ns), not every tick.
  }

  void sweep_grants(pool::time_point now) {
    const std::int64_t idle = ns_of(now) - std::chrono::duration_cast<std::chrono::nanoseconds>(grant_idle).count();
    for (auto& s : st_.grants_) {
      std::lock_guard lock(s.mu);
      std::erase_if(s.map, [idle](const auto& kv) { return kv.second.last_use_ns < idle; });
    }
  }

  redis_state& st_;
  std::array<std::string, s_count> shas_;
  std::string sub_error_;
  pool::time_point next_heartbeat_ = pool::clock::now() + 1s;  // the subscriber brings it forward
  std::uint64_t applied_serial_ = 0;
  int applied_n_ = 0;
  asio::io_context io_;  // last: the coroutine frames it holds go first
};

// ---- redis_state ---------------------------------------------------------------------------

std::size_t redis_state::grant_key_hash::operator()(const grant_key& k) const {
  return static_cast<std::size_t>(pool::mix64(k.exit_hash, k.host_hash));
}

redis_state::redis_state(redis_state_config cfg, const pool::pool_holder& pool)
    : cfg_(std::move(cfg)),
      pool_(pool),
      local_(pool::limits_config{}, cfg_.health),
      sessions_(cfg_.limits.max_sticky_sessions),
      sync_(std::make_unique<sync>(*this)) {
  if (cfg_.limits.per_exit_host_rate > 0) {
    fallback_hosts_.store(
        std::make_shared<pool::host_limits>(cfg_.limits.per_exit_host_rate, std::max(1.0, cfg_.limits.burst)));
  }
  if (cfg_.up_gauge != nullptr) {
    cfg_.up_gauge->store(0, std::memory_order_relaxed);
  }
}

redis_state::~redis_state() {
  stopping_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) {
    sync_->io().stop();
    thread_.join();
    leave(500ms);  // after the sync thread: no heartbeat can bring this gateway back
  }
  sync_.reset();
}

void redis_state::leave(std::chrono::milliseconds timeout) {
  reply r;
  const std::string& id = cfg_.gateway_id;
  auto err =
      eval_once(cfg_.url, {std::string(script_leave), "2", key_fleet, key_gateway + id, id, key_events}, r, timeout);
  if (err) {
    spdlog::warn(
        "state backend {}: could not leave the fleet ({}: {}); the others drop this gateway when its "
        "heartbeat ends",
        redacted(cfg_.url), redis_errc_name(err.code), err.message);
  } else {
    spdlog::info("state backend {}: left the fleet", redacted(cfg_.url));
  }
}

std::string redis_state::start() {
  auto err = sync_->probe(2s);
  if (err.code == redis_errc::auth || err.code == redis_errc::select || err.code == redis_errc::protocol) {
    throw std::runtime_error(fmt::format("--state {}: {}", redacted(cfg_.url), err.message));
  }
  asio::co_spawn(sync_->io(), sync_->run(), asio::detached);
  thread_ = std::thread([this] { sync_->io().run(); });
  if (err) {
    return fmt::format("{} ({})", err.message, redis_errc_name(err.code));
  }
  // Serve knowing the fleet size (and the bans in force): a gateway that joins with the
  // whole of each cap would let the fleet exceed it until its first heartbeat.
  for (auto deadline = pool::clock::now() + 2s; !backend_up() && pool::clock::now() < deadline;) {
    std::this_thread::sleep_for(5ms);
  }
  return {};
}

int redis_state::batch_of(const grant_key& k) const {
  return grant_batch(k.host_hash == 0 ? cfg_.limits.per_exit_rate : cfg_.limits.per_exit_host_rate);
}

redis_state::grant_stripe& redis_state::stripe_of(const grant_key& k) const {
  return grants_[pool::mix64(k.exit_hash, k.host_hash) & (grants_.size() - 1)];
}

pool::time_point redis_state::token_at(const grant_key& k, pool::time_point now) const {
  auto& s = stripe_of(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) {
    if (s.map.size() * grants_.size() >= max_grants) {
      return now + cfg_.tick;  // full: wait for the sweep rather than grow
    }
    it = s.map.emplace(k, grant{}).first;
  }
  grant& g = it->second;
  const std::int64_t n = ns_of(now);
  g.last_use_ns = n;
  if (g.tokens > 0 && n < g.valid_until_ns) {
    return now;
  }
  if (n >= g.next_ns) {
    g.wanted = true;
  }
  // No token here until the next grant arrives: a tick and a round trip at the soonest.
  return std::max(now + cfg_.tick, tp_of(g.next_ns));
}

bool redis_state::take(const grant_key& k, pool::time_point now) {
  auto& s = stripe_of(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) {
    if (s.map.size() * grants_.size() < max_grants) {
      s.map.emplace(k, grant{.last_use_ns = ns_of(now), .wanted = true});
    }
    return false;
  }
  grant& g = it->second;
  const std::int64_t n = ns_of(now);
  g.last_use_ns = n;
  if (g.tokens > 0 && n < g.valid_until_ns) {
    // The next batch is asked for when half of this one is spent, so it arrives (a tick and
    // a round trip) before the grant runs dry: a busy gateway never waits for Redis.
    if (--g.tokens <= batch_of(k) / 2 && n >= g.next_ns) {
      g.wanted = true;
    }
    return true;
  }
  g.tokens = 0;
  if (n >= g.next_ns) {
    g.wanted = true;
  }
  return false;
}

void redis_state::refund(const grant_key& k) {
  auto& s = stripe_of(k);
  std::lock_guard lock(s.mu);
  if (auto it = s.map.find(k); it != s.map.end()) {
    ++it->second.tokens;
  }
}

pool::time_point redis_state::exit_token_at(const pool::exit& e, pool::time_point now) const {
  if (!(cfg_.limits.per_exit_rate > 0)) {
    return now;
  }
  if (!backend_up()) {
    return e.limiter().next_available(now);
  }
  return token_at({e.id_hash(), 0}, now);
}

bool redis_state::take_exit_token(pool::exit& e, pool::time_point now) {
  if (!(cfg_.limits.per_exit_rate > 0)) {
    return true;
  }
  if (!backend_up()) {
    return e.limiter().try_take(now);
  }
  return take({e.id_hash(), 0}, now);
}

void redis_state::refund_exit_token(pool::exit& e) {
  if (!(cfg_.limits.per_exit_rate > 0)) {
    return;
  }
  if (!backend_up()) {
    e.limiter().refund();
    return;
  }
  refund({e.id_hash(), 0});
}

namespace {
// Host hashes are never 0 (0 marks the exit's own grant).
std::uint64_t host_key(std::string_view host) {
  return pool::hash64(host, 0x686f7374) | 1;
}
}  // namespace

pool::time_point redis_state::host_token_at(const pool::exit& e, std::string_view host, pool::time_point now) const {
  if (!backend_up()) {
    return fallback_hosts()->next_available(e, host, now);
  }
  return token_at({e.id_hash(), host_key(host)}, now);
}

void redis_state::host_token_at_many(std::string_view host, std::uint64_t host_hash,
                                     std::span<const std::uint64_t> exit_hashes, pool::time_point now,
                                     std::span<pool::time_point> out) const {
  if (!backend_up()) {
    fallback_hosts()->next_available_many(host, host_hash, exit_hashes, now, out);
    return;
  }
  const std::uint64_t h = host_key(host);
  for (std::size_t i = 0; i < exit_hashes.size(); ++i) {
    out[i] = token_at({exit_hashes[i], h}, now);
  }
}

bool redis_state::take_host_token(const pool::exit& e, std::string_view host, pool::time_point now) {
  if (!backend_up()) {
    return fallback_hosts()->try_take(e, host, now);
  }
  return take({e.id_hash(), host_key(host)}, now);
}

void redis_state::refund_host_token(const pool::exit& e, std::string_view host) {
  if (!backend_up()) {
    fallback_hosts()->refund(e, host);
    return;
  }
  refund({e.id_hash(), host_key(host)});
}

void redis_state::enqueue(outbound o) {
  std::lock_guard lock(queue_mu_);
  if (queue_.size() < max_queue) {
    queue_.push_back(std::move(o));
  }
}

pool::session_info redis_state::session(std::string_view key, std::chrono::seconds ttl, pool::time_point now) {
  auto info = sessions_.lookup(key, ttl, now);
  if (info.fresh && backend_up() && key.size() <= max_session_key) {
    enqueue({.type = outbound::kind::claim,
             .text = std::string(key),
             .generation = info.generation,
             .ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count()});
  }
  return info;
}

void redis_state::anchor_session(std::string_view key, std::uint64_t generation, std::uint64_t exit_hash) {
  sessions_.anchor(key, generation, exit_hash);
  if (backend_up() && key.size() <= max_session_key) {
    enqueue({.type = outbound::kind::anchor, .text = std::string(key), .generation = generation, .anchor = exit_hash});
  }
}

namespace {
std::string ban_mark_key(const pool::exit& e, std::string_view host) {
  std::string k = e.id();
  k += '\n';
  k += host;
  return k;
}
}  // namespace

void redis_state::mark_remote_ban(const pool::exit& e, std::string_view host, const std::string& gateway,
                                  pool::time_point until, pool::time_point now) {
  const auto before = local_.banned_until(e, host, now);
  local_.ban(e, host, until);
  if (before && *before >= until) {
    return;  // the ban in force already lasts longer: its origin stands
  }
  std::lock_guard lock(origins_mu_);
  if (ban_origins_.size() < max_marks) {
    ban_origins_[ban_mark_key(e, host)] = {gateway, ns_of(until)};
  }
}

void redis_state::mark_remote_ejection(const pool::exit& e, const std::string& gateway, pool::time_point until) {
  if (e.down_until() >= until) {
    return;
  }
  // The exits' atomics are the mirror of health: a remote ejection holds the exit down.
  const_cast<pool::exit&>(e).hold_down_until(until);
  std::lock_guard lock(origins_mu_);
  if (eject_origins_.size() < max_marks) {
    eject_origins_[e.id()] = {gateway, ns_of(until)};
  }
}

std::string redis_state::ban_origin(const pool::exit& e, std::string_view host, pool::time_point now) const {
  std::lock_guard lock(origins_mu_);
  auto it = ban_origins_.find(ban_mark_key(e, host));
  return it != ban_origins_.end() && it->second.until_ns > ns_of(now) ? it->second.gateway : std::string();
}

std::string redis_state::ejection_origin(const pool::exit& e, pool::time_point now) const {
  std::lock_guard lock(origins_mu_);
  auto it = eject_origins_.find(e.id());
  if (it == eject_origins_.end() || it->second.until_ns <= ns_of(now) || ns_of(e.down_until()) > it->second.until_ns) {
    return {};
  }
  return it->second.gateway;
}

void redis_state::ban(const pool::exit& e, std::string_view host, pool::time_point until) {
  local_.ban(e, host, until);
  {
    std::lock_guard lock(origins_mu_);
    if (auto it = ban_origins_.find(ban_mark_key(e, host));
        it != ban_origins_.end() && it->second.until_ns <= ns_of(until)) {
      ban_origins_.erase(it);  // our own verdict is the one in force now
    }
  }
  if (host.empty() || host.size() > max_host || e.id().size() > 1024) {
    return;  // kept here; not shared (no such host name in DNS)
  }
  enqueue({.type = outbound::kind::ban, .exit_id = e.id(), .text = std::string(host), .until_ns = ns_of(until)});
}

void redis_state::report(pool::exit& e, const pool::outcome& o, pool::time_point now) {
  const auto before = e.down_until();
  local_.report(e, o, now);
  const auto after = e.down_until();
  if (after > before && after > now && e.id().size() <= 1024) {
    {
      std::lock_guard lock(origins_mu_);
      eject_origins_.erase(e.id());
    }
    enqueue({.type = outbound::kind::ejection, .exit_id = e.id(), .until_ns = ns_of(after)});
  }
}

void redis_state::sweep(pool::time_point now) {
  local_.sweep(now);
  sessions_.sweep(now);
  if (auto f = fallback_hosts()) {
    f->sweep(now);
  }
  std::lock_guard lock(origins_mu_);
  const std::int64_t n = ns_of(now);
  std::erase_if(ban_origins_, [n](const auto& kv) { return kv.second.until_ns <= n; });
  std::erase_if(eject_origins_, [n](const auto& kv) { return kv.second.until_ns <= n; });
}

std::vector<fleet_member> read_fleet(const redis_url& url, std::chrono::milliseconds timeout) {
  reply r;
  redis_error err = eval_once(url, {std::string(script_fleet), "1", key_fleet, key_gateway}, r, timeout);
  if (!err && r.is_error()) {
    err = redis_error{redis_errc::protocol, r.str};
  }
  if (err) {
    throw std::runtime_error(fmt::format("{}: {} ({})", redacted(url), err.message, redis_errc_name(err.code)));
  }
  std::vector<fleet_member> out;
  for (std::size_t i = 0; i + 2 < r.elements.size(); i += 3) {
    out.push_back({r.elements[i].str, r.elements[i + 1].str, r.elements[i + 2].as_int(0)});
  }
  return out;
}

}  // namespace exitpool::fleet
