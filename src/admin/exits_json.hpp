#pragma once
// The `/exits` admin document: every exit of a pool snapshot with its tags,
// state and live statistics, as JSON (Boost.JSON). Pure function of its inputs:
// any thread. URLs are redacted (proto::redacted_url): no password is ever output.
//
// Shape:
//   {"exits": [{"id", "url", "scheme", "tags": {"country", "city", "type", "weight", <other tags>},
//               "state": "healthy"|"ejected"|"probing" (pool::state_name), "tier", "inflight", "successes", "failures",
//               "success_rate" (null before the first dial), "ewma_latency_ms" (null before the first sample),
//               "consecutive_failures", "cooldown_remaining_s", "bans": [...]}, ...],
//    "sources": [{"source" (the name: never a key), "kind": "file"|"url", "exits", "ok", "error" (null when ok),
//                 "failures" (in a row), "refresh_s", "last_success_age_s", "next_fetch_in_s" (null when none),
//                 "fetches": {"changed", "unchanged", "failed"}}, ...]}
// A provider line (pool/elastic.hpp) adds "provider" (provider_json) and "virtual_exits":
// the objects of its live sticky-session virtual exits (rotation's last only as long as
// their request, and show in the line's inflight) each with "exit_ip" (--learn-exit-ip;
// null until known), and "shared_ips" ({IP: [virtual exit ids]} for IPs that two or more
// of them leave from); a virtual exit adds "line" (its id).
// `bans`: [{"host", "remaining_s", "decided_by", "gateway"}] in force at `now`, sorted by
// host; empty when no ban table is given. The ban table is walked once per document
// (state::bans_by_exit), not once per exit: an admin page, not a request path, but one that
// must stay cheap while the shards ban and pick under the same stripe locks.
// "decided_by" is "local" (this gateway's own verdict) or "fleet" (another gateway's, shared
// through --state; "gateway" names it, and is absent for local ones). An ejected exit has
// "decided_by" (and "gateway") the same way. Both only when the state is given (`origins`;
// /exits and the dashboard's rows give it).

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <span>
#include <string>

#include "pool/pool.hpp"
#include "pool/source.hpp"
#include "pool/state.hpp"

namespace exitpool::admin {

// {"country", "city", "type" (null when untagged), "weight", <other tags as strings>}.
boost::json::object exit_tags_json(const proto::exit_spec& spec);

// {"preset" (null for custom templates), "user_template", "pass_template", "countries" and
// "cities" ("*" or a list), "rotate", "rate", "max_sessions"}. Templates hold no secrets:
// the account's password is the {pass} placeholder.
boost::json::object provider_json(const proto::provider_line& p);

// One exit's object as listed by /exits (also the rows of the dashboard). `bans`: the
// bans in force at `now` (state::bans_by_exit); null lists none.
// `origins`: the state that says who decided each ban and ejection; null leaves
// "decided_by" out.
boost::json::object exit_json(const pool::exit& e, pool::time_point now, const pool::ban_index* bans = nullptr,
                              const pool::state* origins = nullptr);

// One pool source's object as listed under "sources".
boost::json::object source_json(const pool::source_status& s);

boost::json::value exits_json(const pool::snapshot& snap, pool::time_point now, const pool::state* bans = nullptr,
                              std::span<const pool::source_status> sources = {});

// exits_json serialized, with a trailing newline.
std::string render_exits_json(const pool::snapshot& snap, pool::time_point now, const pool::state* bans = nullptr,
                              std::span<const pool::source_status> sources = {});

}  // namespace exitpool::admin
