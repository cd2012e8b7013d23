#include "crawl/shared_frontier.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <deque>

#include "crawl/url_norm.hpp"
#include "fetch/url_set.hpp"

namespace exitpool::crawl {

namespace asio = boost::asio;
using fleet::redis_errc;
using fleet::redis_error;
using fleet::reply;

namespace {

// Every script starts with ARGV[1] = key prefix, ARGV[2] = now (ms), ARGV[3] = --per-host.
// Redis's CPU is the fleet's, and most of it goes to each redis.call a script makes, so a
// script batches: queue and in-flight counters move once per call (flush), a host touched by
// many URLs is woken once, and one HMGET/HSET/HDEL/ZADD/RPUSH covers every lease or URL of a
// call. Redis replicates a script by its effects, so the order of a flush does not matter.
constexpr std::string_view prelude = R"lua(
local P = ARGV[1]
local now = tonumber(ARGV[2])
local per_host = tonumber(ARGV[3])
-- unpack() is bounded by Lua's C stack: long argument lists go in slices of 4,000 (even,
-- so field/value pairs stay together).
local function each_slice(args, fn)
  for i = 1, #args, 4000 do fn(unpack(args, i, math.min(i + 3999, #args))) end
end
local function hmget(hash, fields)
  local out = {}
  each_slice(fields, function(...)
    for _, v in ipairs(redis.call('HMGET', hash, ...)) do out[#out + 1] = v end
  end)
  return out
end
local woken, wake_order = {}, {}
local inflight, inflight_order = {}, {}
local pushes, push_order = {}, {}
local queued = 0
-- Deferred to flush(): a host is woken (put in ready if it has work and a free slot) once
-- per call, after every counter has moved.
local function wake(key)
  if not woken[key] then
    woken[key] = true
    wake_order[#wake_order + 1] = key
  end
end
local function move_inflight(key, d)
  if not inflight[key] then
    inflight[key] = 0
    inflight_order[#inflight_order + 1] = key
  end
  inflight[key] = inflight[key] + d
end
local function add(key, item, bucket, member)
  if redis.call('SADD', P..':seen:'..bucket, member) == 1 then
    if not pushes[key] then
      pushes[key] = {}
      push_order[#push_order + 1] = key
    end
    local q = pushes[key]
    q[#q + 1] = item
    queued = queued + 1
    wake(key)
    return 1
  end
  return 0
end
local function flush()
  for _, key in ipairs(push_order) do
    each_slice(pushes[key], function(...) redis.call('RPUSH', P..':q:'..key, ...) end)
  end
  if queued ~= 0 then redis.call('INCRBY', P..':queued', queued) end
  for _, key in ipairs(inflight_order) do
    if inflight[key] ~= 0 then redis.call('HINCRBY', P..':inflight', key, inflight[key]) end
  end
  if #wake_order == 0 then return end
  local ins = hmget(P..':inflight', wake_order)
  local nxt = hmget(P..':next', wake_order)
  local ready = {}
  for i, key in ipairs(wake_order) do
    if tonumber(ins[i] or '0') < per_host and redis.call('LLEN', P..':q:'..key) > 0 then
      ready[#ready + 1] = math.max(now, tonumber(nxt[i] or '0'))
      ready[#ready + 1] = key
    end
  end
  each_slice(ready, function(...) redis.call('ZADD', P..':ready', 'NX', ...) end)
end
local function split(v)
  local rest = string.sub(v, 2)
  local nl = string.find(rest, '\n', 1, true)
  return string.sub(v, 1, 1), string.sub(rest, 1, nl - 1), string.sub(rest, nl + 1)
end
-- The leases of ids (a list), by id: their stored values (flag, key, item), each id once.
local function leases(ids)
  local uniq, seen = {}, {}
  for _, id in ipairs(ids) do
    if not seen[id] then
      seen[id] = true
      uniq[#uniq + 1] = id
    end
  end
  local vals = {}
  if #uniq > 0 then vals = hmget(P..':lease', uniq) end
  return uniq, vals
end
)lua";

// ARGV[4..]: key, item, bucket, member per URL.
constexpr std::string_view script_add = R"lua(
local n = 0
for i = 4, #ARGV, 4 do n = n + add(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]) end
flush()
return n
)lua";

// Every lease whose fetch ended this round, one after another: ARGV[i] = lease id, ARGV[i+1]
// = N, then the page's N links (4 per URL). The host's politeness slot is free; the links are
// discovered now (the page is done only when acknowledged).
constexpr std::string_view script_release = R"lua(
local ids = {}
local i = 4
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  ids[#ids + 1] = ARGV[i]
  for j = i + 2, i + 1 + 4 * n, 4 do add(ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3]) end
  i = i + 2 + 4 * n
end
local uniq, vals = leases(ids)
local flags = {}
for k, v in ipairs(vals) do
  if v and string.sub(v, 1, 1) == '0' then
    local _, key = split(v)
    flags[#flags + 1] = uniq[k]
    flags[#flags + 1] = '1'..string.sub(v, 2)
    move_inflight(key, -1)
    wake(key)
  end
end
each_slice(flags, function(...) redis.call('HSET', P..':lease', ...) end)
flush()
return 1
)lua";

// Every acknowledgement of this round, one after another: ARGV[i] = lease id, ARGV[i+1] =
// 'page' | 'drop', ARGV[i+2] = N, then N links (4 per URL).
constexpr std::string_view script_ack = R"lua(
local ids, kind = {}, {}
local i = 4
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  ids[#ids + 1] = ARGV[i]
  if kind[ARGV[i]] == nil then kind[ARGV[i]] = ARGV[i + 1] end
  for j = i + 3, i + 2 + 4 * n, 4 do add(ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3]) end
  i = i + 3 + 4 * n
end
local uniq, vals = leases(ids)
local gone = {}
local done, dropped = 0, 0
for k, v in ipairs(vals) do
  if v then
    local flag, key = split(v)
    gone[#gone + 1] = uniq[k]
    if flag == '0' then move_inflight(key, -1) end
    if kind[uniq[k]] == 'page' then done = done + 1 else dropped = dropped + 1 end
    wake(key)
  end
end
each_slice(gone, function(...)
  redis.call('HDEL', P..':lease', ...)
  redis.call('ZREM', P..':leases', ...)
end)
if done > 0 then redis.call('INCRBY', P..':done', done) end
if dropped > 0 then redis.call('INCRBY', P..':dropped', dropped) end
if #ids > #gone then redis.call('INCRBY', P..':stale', #ids - #gone) end
if dropped > 0 and tonumber(redis.call('GET', P..':max_pages') or '0') > 0 then
  -- A page dropped without a line (robots.txt) gives its place in --max-pages back; the
  -- hosts parked on the spent budget may go again.
  redis.call('DECRBY', P..':handed', dropped)
  for _, h in ipairs(redis.call('SMEMBERS', P..':parked')) do
    redis.call('SREM', P..':parked', h)
    wake(h)
  end
end
flush()
return 1
)lua";

// ARGV[4] = lease ms, ARGV[5..]: lease ids still held.
constexpr std::string_view script_renew = R"lua(
local until_ms = now + tonumber(ARGV[4])
local pairs_ = {}
for i = 5, #ARGV do
  pairs_[#pairs_ + 1] = until_ms
  pairs_[#pairs_ + 1] = ARGV[i]
end
each_slice(pairs_, function(...) redis.call('ZADD', P..':leases', 'XX', ...) end)
return 1
)lua";

// ARGV[4] = max deliveries, ARGV[5] = most leases to reap.
constexpr std::string_view script_reap = R"lua(
local ids = redis.call('ZRANGEBYSCORE', P..':leases', '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, id in ipairs(ids) do
  local v = redis.call('HGET', P..':lease', id)
  redis.call('ZREM', P..':leases', id)
  redis.call('HDEL', P..':lease', id)
  if v then
    local flag, key, item = split(v)
    if flag == '0' then move_inflight(key, -1) end
    local d, rest = string.match(item, '^(%d+)|(.*)$')
    d = tonumber(d) + 1
    if d >= tonumber(ARGV[4]) then
      redis.call('RPUSH', P..':dead', key..'\n'..d..'|'..rest)
    else
      redis.call('LPUSH', P..':q:'..key, d..'|'..rest)
      queued = queued + 1
      redis.call('INCR', P..':requeued')
    end
    wake(key)
  end
end
flush()
return #ids
)lua";

// ARGV[4] = host key, ARGV[5] = its delay (ms) as its robots.txt says (or --delay):
// published by the worker that just read it. That worker's own URL of the host starts one
// delay after its robots.txt request: the next may start a delay after that.
constexpr std::string_view script_delay = R"lua(
redis.call('HSET', P..':delay', ARGV[4], ARGV[5])
redis.call('HSET', P..':next', ARGV[4], now + 2 * tonumber(ARGV[5]))
redis.call('ZREM', P..':ready', ARGV[4])
wake(ARGV[4])
flush()
return 1
)lua";

// ARGV[4] = most items, ARGV[5] = lease ms, ARGV[6] = default delay ms, ARGV[7] =
// --max-pages (0: none). The budget counts first deliveries (deliveries 0) here, where they
// are taken, so it holds across workers; a re-delivery (an expired lease) was counted once
// already and goes out even when the budget is spent. A host whose next URL is a first
// delivery once the budget is spent is parked (out of ready) until a drop gives budget back.
// A host's URLs come off its queue with one LRANGE and one LTRIM; the leases are numbered
// with one INCRBY and stored with one HSET and one ZADD.
constexpr std::string_view script_take = R"lua(
local want = tonumber(ARGV[4])
local lease_ms = tonumber(ARGV[5])
-- The crawl's budget is the --max-pages of the first worker to take (0: none); a worker
-- started later with another value follows it (and says so).
redis.call('SETNX', P..':max_pages', ARGV[7])
local max_pages = tonumber(redis.call('GET', P..':max_pages'))
local handed = tonumber(redis.call('GET', P..':handed') or '0')
local handed0 = handed
local hosts = redis.call('ZRANGEBYSCORE', P..':ready', '-inf', now, 'LIMIT', 0, want)
local got = {}  -- key, item, key, item, ...
local requeued = 0
local served, nexts, parked = {}, {}, {}
if #hosts > 0 then
  local ins = hmget(P..':inflight', hosts)
  local delays = hmget(P..':delay', hosts)
  for h, key in ipairs(hosts) do
    local left = want - #got / 2
    if left <= 0 then break end
    local known = delays[h]
    local delay = tonumber(known or ARGV[6])
    local k = per_host - tonumber(ins[h] or '0')
    if delay > 0 and k > 1 then k = 1 end
    if not known then
      -- Nobody has read this host's robots.txt yet: one URL goes out, and the host is held
      -- until its taker publishes the delay (or its lease expires).
      k = math.min(k, 1)
      delay = lease_ms
    end
    k = math.min(k, left)
    local taken = 0
    local held = false
    if k > 0 then
      for _, item in ipairs(redis.call('LRANGE', P..':q:'..key, 0, k - 1)) do
        local first = string.sub(item, 1, 2) == '0|'
        if first and max_pages > 0 and handed >= max_pages then
          held = true
          break
        end
        if first then handed = handed + 1 else requeued = requeued + 1 end
        got[#got + 1] = key
        got[#got + 1] = item
        taken = taken + 1
      end
    end
    if taken > 0 then
      redis.call('LTRIM', P..':q:'..key, taken, -1)
      move_inflight(key, taken)
      nexts[#nexts + 1] = key
      nexts[#nexts + 1] = now + delay
    end
    served[#served + 1] = key
    if held then parked[#parked + 1] = key else wake(key) end
  end
end
local out = {}
local n = #got / 2
if n > 0 then
  local first_id = redis.call('INCRBY', P..':seq', n) - n + 1
  local lease, expiry = {}, {}
  for j = 1, n do
    local id, key, item = first_id + j - 1, got[2 * j - 1], got[2 * j]
    lease[#lease + 1] = id
    lease[#lease + 1] = '0'..key..'\n'..item
    expiry[#expiry + 1] = now + lease_ms
    expiry[#expiry + 1] = id
    out[#out + 1] = id
    out[#out + 1] = key
    out[#out + 1] = item
  end
  each_slice(lease, function(...) redis.call('HSET', P..':lease', ...) end)
  each_slice(expiry, function(...) redis.call('ZADD', P..':leases', ...) end)
  queued = queued - n
  if requeued > 0 then redis.call('DECRBY', P..':requeued', requeued) end
end
each_slice(nexts, function(...) redis.call('HSET', P..':next', ...) end)
each_slice(served, function(...) redis.call('ZREM', P..':ready', ...) end)
each_slice(parked, function(...) redis.call('SADD', P..':parked', ...) end)
flush()
if handed ~= handed0 then redis.call('SET', P..':handed', handed) end
return out
)lua";

std::string script(std::string_view body) {
  std::string s(prelude);
  s += body;
  return s;
}

// Every script, by index: a round sends EVALSHA with the index in place of the SHA1, which
// run_exec fills in once the connection has loaded them (SCRIPT LOAD, once per connection:
// a restarted Redis has lost them, and a new connection follows a restart).
enum script_id : std::uint8_t { s_add, s_release, s_ack, s_renew, s_reap, s_delay, s_take, s_count };
const std::array<std::string, s_count>& scripts() {
  static const std::array<std::string, s_count> all{script(script_add),   script(script_release), script(script_ack),
                                                    script(script_renew), script(script_reap),    script(script_delay),
                                                    script(script_take)};
  return all;
}

asio::awaitable<void> run_exec(fleet::connection& c, fleet::redis_url url, std::chrono::milliseconds timeout,
                               std::vector<std::vector<std::string_view>> cmds, std::vector<reply>& out,
                               redis_error& err, std::vector<std::string>& shas) {
  if (!c.is_open()) {
    shas.clear();
    err = co_await c.connect(url, timeout);
    if (err) {
      co_return;
    }
  }
  if (shas.empty()) {
    std::vector<std::vector<std::string>> load;
    for (const auto& s : scripts()) {
      load.push_back({"SCRIPT", "LOAD", s});
    }
    std::vector<reply> loaded;
    err = co_await c.exec(std::move(load), loaded, timeout);
    if (err) {
      co_return;
    }
    for (const auto& r : loaded) {
      if (r.is_error() || r.str.empty()) {
        err = redis_error{redis_errc::protocol, "SCRIPT LOAD refused: " + r.str};
        c.close();
        co_return;
      }
      shas.push_back(r.str);
    }
  }
  for (auto& cmd : cmds) {
    if (cmd[0] == "EVALSHA") {
      cmd[1] = shas[static_cast<std::size_t>(cmd[1][0] - '0')];
    }
  }
  err = co_await c.exec(cmds, out, timeout);
  for (const auto& r : out) {
    if (r.is_error() && r.str.starts_with("NOSCRIPT")) {
      c.close();  // flushed under us: load them again on the next round
    }
  }
}

}  // namespace

std::string encode_item(const queue_item& i) {
  return fmt::format("{}|{}|{}|{}", i.deliveries, i.depth, i.hops, i.url);
}

std::optional<queue_item> decode_item(std::string_view s) {
  queue_item i;
  std::uint32_t* fields[] = {&i.deliveries, &i.depth, &i.hops};
  for (auto* f : fields) {
    const auto bar = s.find('|');
    if (bar == std::string_view::npos) {
      return std::nullopt;
    }
    const auto [p, ec] = std::from_chars(s.data(), s.data() + bar, *f);
    if (ec != std::errc() || p != s.data() + bar) {
      return std::nullopt;
    }
    s.remove_prefix(bar + 1);
  }
  if (s.empty()) {
    return std::nullopt;
  }
  i.url = std::string(s);
  return i;
}

long long open_work(long long queued, long long requeued, long long handed, long long max_pages) {
  if (max_pages > 0 && handed >= max_pages) {
    return std::clamp(requeued, 0LL, std::max(queued, 0LL));
  }
  return std::max(queued, 0LL);
}

admit admit_of(std::string_view url, std::uint32_t depth, std::uint32_t hops) {
  return admit_of(url, depth, hops, fetch::fingerprint(url));
}

admit admit_of(std::string_view url, std::uint32_t depth, std::uint32_t hops, std::uint64_t fp) {
  const url_key k = split_url(url);
  admit a;
  a.key = std::string(k.scheme) + "://" + std::string(k.authority);
  a.item = encode_item({0, depth, hops, std::string(url)});
  a.bucket = std::to_string(fp % 65536);
  // A signed decimal integer: Redis keeps small sets of integers as 8-byte intsets.
  a.member = std::to_string(static_cast<std::int64_t>(fp));
  return a;
}

struct shared_frontier::io {
  asio::io_context ctx{1};
  fleet::connection conn{ctx.get_executor()};
  std::vector<std::string> shas;  // of scripts(), loaded on this connection
};

shared_frontier::shared_frontier(shared_config c)
    : cfg_(std::move(c)), prefix_("exitpool:crawl:" + cfg_.name), io_(std::make_unique<io>()) {}

shared_frontier::~shared_frontier() = default;

std::int64_t shared_frontier::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

redis_error shared_frontier::exec(std::vector<std::vector<std::string_view>> cmds, std::vector<reply>& out) {
  redis_error err{redis_errc::timeout, "no answer"};
  io_->ctx.restart();
  asio::co_spawn(io_->ctx, run_exec(io_->conn, cfg_.url, cfg_.timeout, std::move(cmds), out, err, io_->shas),
                 asio::detached);
  io_->ctx.run_for(cfg_.timeout * 2 + std::chrono::milliseconds(500));
  if (!io_->ctx.stopped()) {
    io_->conn.close();  // a stuck exchange: start afresh next time
    io_->ctx.run_for(std::chrono::milliseconds(100));
    err = redis_error{redis_errc::timeout, "no answer"};
  }
  return err;
}

redis_error shared_frontier::run(shared_round& r, std::int64_t now) {
  // Views of r's strings and of `text` (numbers, key names): a round's URLs are not copied
  // on their way to the wire. `text` is a deque, so its strings stay where they are.
  std::deque<std::string> text;
  auto keep = [&](std::string s) -> std::string_view { return text.emplace_back(std::move(s)); };
  std::vector<std::vector<std::string_view>> cmds;
  const std::string_view now_s = keep(std::to_string(now)), per_host_s = keep(std::to_string(cfg_.per_host));
  static constexpr std::array<std::string_view, s_count> ids{"0", "1", "2", "3", "4", "5", "6"};
  auto eval = [&](script_id id) -> std::vector<std::string_view>& {
    cmds.push_back({"EVALSHA", ids[id], "0", prefix_, now_s, per_host_s});
    return cmds.back();
  };
  auto push_admits = [](std::vector<std::string_view>& cmd, const std::vector<admit>& as) {
    for (const auto& a : as) {
      cmd.insert(cmd.end(), {a.key, a.item, a.bucket, a.member});
    }
  };
  auto count = [&](std::size_t n) -> std::string_view {
    static constexpr std::array<std::string_view, 10> small{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    return n < small.size() ? small[n] : keep(std::to_string(n));
  };
  if (!r.seeds.empty()) {
    push_admits(eval(s_add), r.seeds);
  }
  for (const auto& [key, ms] : r.delays) {
    auto& c = eval(s_delay);
    c.push_back(key);
    c.push_back(keep(std::to_string(ms)));
  }
  if (!r.renew.empty()) {
    auto& c = eval(s_renew);
    c.push_back(keep(std::to_string(cfg_.lease.count())));
    for (auto id : r.renew) {
      c.push_back(keep(std::to_string(id)));
    }
  }
  if (r.reap) {
    auto& c = eval(s_reap);
    c.push_back(count(static_cast<std::size_t>(cfg_.max_deliveries)));
    c.push_back("1000");
  }
  if (r.heartbeat) {
    cmds.push_back({"ZADD", keep(prefix_ + ":workers"), now_s, cfg_.worker});
  }
  const std::size_t take_at = cmds.size();
  if (r.take > 0) {
    auto& c = eval(s_take);
    c.push_back(count(static_cast<std::size_t>(r.take)));
    c.push_back(keep(std::to_string(cfg_.lease.count())));
    c.push_back(keep(std::to_string(cfg_.delay.count())));
    c.push_back(keep(std::to_string(cfg_.max_pages)));
  }
  // Releases and acknowledgements: one script call each per round, however many, after
  // the take: a host's slot this worker frees goes to whichever worker asks next, not back
  // to this one in the same breath (with four hosts and one worker finishing first, that
  // worker would otherwise keep every slot and the others idle).
  if (!r.release.empty()) {
    auto& c = eval(s_release);
    for (const auto& rel : r.release) {
      c.push_back(keep(std::to_string(rel.id)));
      c.push_back(count(rel.links.size()));
      push_admits(c, rel.links);
    }
  }
  if (!r.acks.empty()) {
    auto& c = eval(s_ack);
    for (const auto& a : r.acks) {
      c.push_back(keep(std::to_string(a.id)));
      c.push_back(a.page ? "page" : "drop");
      c.push_back(count(a.links.size()));
      push_admits(c, a.links);
    }
  }
  const std::size_t robots_at = cmds.size();
  for (const auto& key : r.robots_get) {
    cmds.push_back({"GET", keep(prefix_ + ":robots:" + key)});
  }
  for (const auto& [key, value] : r.robots_set) {
    cmds.push_back(
        {"SET", keep(prefix_ + ":robots:" + key), value, "PX", keep(std::to_string(r.robots_ttl.count())), "NX"});
  }
  const std::size_t counts_at = cmds.size();
  cmds.push_back({"GET", keep(prefix_ + ":queued")});
  cmds.push_back({"ZCARD", keep(prefix_ + ":leases")});
  cmds.push_back({"GET", keep(prefix_ + ":handed")});
  cmds.push_back({"GET", keep(prefix_ + ":requeued")});
  cmds.push_back({"GET", keep(prefix_ + ":max_pages")});
  std::vector<reply> out;
  if (auto err = exec(std::move(cmds), out)) {
    return err;
  }
  for (const auto& rep : out) {
    if (rep.is_error()) {
      return redis_error{redis_errc::protocol, "script refused: " + rep.str};
    }
  }
  if (r.take > 0) {
    const auto& t = out[take_at].elements;
    for (std::size_t i = 0; i + 2 < t.size(); i += 3) {
      auto item = decode_item(t[i + 2].str);
      if (item) {
        r.taken.push_back({static_cast<std::uint64_t>(t[i].as_int()), t[i + 1].str, std::move(*item)});
      }
    }
  }
  for (std::size_t i = 0; i < r.robots_get.size(); ++i) {
    const auto& rep = out[robots_at + i];
    r.robots_got.push_back(rep.is_nil() ? std::nullopt : std::optional<std::string>(rep.str));
  }
  r.queued = out[counts_at].as_int(0);
  r.leased = out[counts_at + 1].as_int(0);
  r.handed = out[counts_at + 2].as_int(0);
  r.max_pages = out[counts_at + 4].is_nil() ? -1 : out[counts_at + 4].as_int(0);
  r.open = open_work(r.queued, out[counts_at + 3].as_int(0), r.handed, std::max(r.max_pages, 0LL));
  return {};
}

redis_error shared_frontier::counts(shared_counts& c, std::int64_t now) {
  std::vector<std::vector<std::string>> cmds{
      {"GET", prefix_ + ":queued"},
      {"ZCARD", prefix_ + ":leases"},
      {"GET", prefix_ + ":done"},
      {"GET", prefix_ + ":dropped"},
      {"LLEN", prefix_ + ":dead"},
      {"GET", prefix_ + ":stale"},
      {"ZCARD", prefix_ + ":ready"},
      {"ZRANGEBYSCORE", prefix_ + ":workers", std::to_string(now - 10000), "+inf"},
      {"ZRANGE", prefix_ + ":ready", "0", "19"},
      {"GET", prefix_ + ":handed"},
      {"GET", prefix_ + ":max_pages"},
  };
  std::vector<reply> out;
  if (auto err = exec(fleet::command_views(cmds), out)) {
    return err;
  }
  c.queued = out[0].as_int(0);
  c.leased = out[1].as_int(0);
  c.done = out[2].as_int(0);
  c.dropped = out[3].as_int(0);
  c.dead = out[4].as_int(0);
  c.stale = out[5].as_int(0);
  c.hosts_ready = out[6].as_int(0);
  c.handed = out[9].as_int(0);
  c.max_pages = out[10].as_int(0);
  for (const auto& w : out[7].elements) {
    c.workers.push_back(w.str);
  }
  std::vector<std::vector<std::string>> lens;
  for (const auto& h : out[8].elements) {
    lens.push_back({"LLEN", prefix_ + ":q:" + h.str});
  }
  if (!lens.empty()) {
    std::vector<reply> l;
    if (auto err = exec(fleet::command_views(lens), l)) {
      return err;
    }
    for (std::size_t i = 0; i < l.size(); ++i) {
      c.backlog.emplace_back(out[8].elements[i].str, l[i].as_int(0));
    }
  }
  return {};
}

}  // namespace exitpool::crawl
