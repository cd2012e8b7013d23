#pragma once
// Pool sources: where the exits come from (`--pool`, repeatable: a file or an http(s):// URL)
// and the decisions about them, as pure functions with time as input: what a fetch's answer
// means for the source's list, when to fetch next (the refresh interval, or a jittered
// backoff after a failure), how the lists of several sources merge into one pool, and what
// a source may show of itself (never its key). The I/O (reading files, fetching URLs on a
// thread of their own) is gateway/pool_sources.hpp; a changed list becomes a pool reload.
//
// Threading: plain values; callers serialize access to one source_state.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "pool/clock.hpp"
#include "proto/pool_list.hpp"

namespace exitpool::pool {

struct source_spec {
  std::string location;  // a file path, or an http:// / https:// URL (may hold the placeholder {key})
  proto::list_defaults defaults;
  // URL sources: fetch again this often (0: at startup and on SIGHUP only). Files: --watch.
  std::chrono::milliseconds refresh{0};
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // one whole fetch
  bool allow_empty = false;  // an answer without exits is a valid (empty) list, not an error
  // The source's secret (an API key, from a file or an environment variable): put in place
  // of {key} in the URL, or sent as the value of `key_header`. Never shown.
  std::string key;
  std::string key_header;

  bool is_url() const;
  // How logs, metrics and /exits name the source: the location as given, {key} unexpanded,
  // a password in the URL's userinfo masked. Never holds `key`.
  std::string name() const;
  // The URL to fetch, with the key in place of {key} (percent-encoded). Never log it.
  std::string request_url() const;
};

// "" when the source is usable; else the reason (naming the source).
std::string check_source(const source_spec& s);

// `text` with every occurrence of the key (as is, and percent-encoded) replaced by "***":
// for error texts that may quote a URL or an answer.
std::string redact_key(std::string text, const source_spec& s);

// What one fetch of a URL brought back (net/http_get.hpp fills it).
struct fetch_result {
  std::string error;  // transport failure (connect, timeout, TLS, too big); "" when an answer came
  int status = 0;     // HTTP status
  std::string body;
  std::string etag;                                 // ETag of the answer, "" when none
  std::string last_modified;                        // Last-Modified of the answer, "" when none
  std::optional<std::chrono::seconds> retry_after;  // of a 429 or 503
};

// The delay before the next fetch after `failures` failed fetches in a row (>= 1): 1 s
// doubled per failure, capped at the refresh interval (at most 5 minutes when the source has
// none), times a jitter factor in [0.5, 1] from `jitter01` in [0, 1) — so that gateways
// sharing a provider do not retry in step — and never less than a Retry-After.
std::chrono::milliseconds retry_delay(int failures, std::chrono::milliseconds refresh, double jitter01,
                                      std::optional<std::chrono::seconds> retry_after = std::nullopt);

// What is known of one source; owned by whoever drives its fetches.
struct source_state {
  std::vector<proto::exit_spec> exits;  // the last good list
  bool loaded = false;                  // a good list has been seen (startup)
  std::string etag;                     // for If-None-Match
  std::string last_modified;            // for If-Modified-Since
  std::uint64_t body_hash = 0;          // of the last good answer: the same bytes again are no change
  int failures = 0;                     // failed fetches in a row
  std::string last_error;               // of the latest failure ("" after a success)
  std::optional<time_point> last_success;
  std::optional<time_point> last_attempt;
  time_point next_fetch{};  // when the refresh is due (time_point::max() when it has no schedule)
  std::uint64_t fetches_changed = 0;
  std::uint64_t fetches_unchanged = 0;  // 304, or the same bytes as the last good answer
  std::uint64_t fetches_failed = 0;
};

enum class fetch_verdict {
  changed,    // a new list: the pool reloads
  unchanged,  // 304 Not Modified or the same list: nothing to do
  failed,     // error, bad status, unparsable or empty answer: the last good list stays
};
const char* verdict_name(fetch_verdict v);

struct fetch_decision {
  fetch_verdict verdict = fetch_verdict::failed;
  std::string error;  // failed: "SOURCE: why" (the key redacted)
};

// Applies one fetch's result to `st` at `now`: a changed list replaces st.exits; a failure
// keeps them and schedules the retry (retry_delay with `jitter01`); any outcome sets
// st.next_fetch. The request headers to send next come from st (conditional_headers).
fetch_decision apply_fetch(source_state& st, const source_spec& spec, const fetch_result& r, time_point now,
                           double jitter01);

// If-None-Match / If-Modified-Since for the next fetch ("Name: value" lines), from st; none
// before the first good list (a 304 then would leave the source without one).
std::vector<std::string> conditional_headers(const source_state& st);

// One source's list, named, for merging.
struct named_list {
  std::string name;
  std::vector<proto::exit_spec> exits;
};
struct merged_pool {
  std::vector<proto::exit_spec> exits;
  // Exits left out because an earlier source already has one with the same id, as
  // "ID from SOURCE (already from FIRST)"; the first source's exit is kept.
  std::vector<std::string> duplicates;
};
// The sources' lists, in order, as one pool. A single list is taken as it is (its own
// parse already refused duplicate ids).
merged_pool merge_sources(std::vector<named_list> lists);

// What /exits and /metrics show of a source (no key, no URL with the key).
struct source_status {
  std::string name;
  bool url = false;
  std::size_t exits = 0;
  bool ok = true;  // the latest fetch or read succeeded
  std::string last_error;
  int failures = 0;
  double refresh_s = 0;                      // 0: no schedule
  std::optional<double> last_success_age_s;  // seconds since the last good list
  std::optional<double> next_fetch_in_s;     // seconds until the next scheduled fetch
  std::uint64_t fetches_changed = 0;
  std::uint64_t fetches_unchanged = 0;
  std::uint64_t fetches_failed = 0;
};
source_status status_of(const source_spec& spec, const source_state& st, time_point now);

}  // namespace exitpool::pool
