#pragma once
// Prometheus text exposition format 0.0.4 for the gateway: shard counters summed
// at scrape time, plus per-exit series read from the pool snapshot's atomics.
// Pure function of its inputs (no I/O, no clock read): any thread.
//
// Exit ids are used as label values; they never contain credentials (a pool
// line's id is explicit or derived from user@host:port without the password),
// and no exit URL is ever rendered here.

#include <span>
#include <string>
#include <string_view>

#include "admin/metrics.hpp"
#include "pool/pool.hpp"
#include "pool/source.hpp"
#include "pool/state.hpp"

namespace exitpool::admin {

// Content-Type of render_prometheus's output.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

// `now` decides each exit's health state. With `bans`, `exitpool_active_bans` counts
// the (exit, host) bans in force (one walk of the ban table). `sources`: the pool's sources
// (exitpool_pool_source_*; their names never hold a key).
std::string render_prometheus(const metrics_registry& metrics, const pool::snapshot& snap, pool::time_point now,
                              const pool::state* bans = nullptr, std::span<const pool::source_status> sources = {});

// A label value escaped for the text format: backslash, double quote and line feed.
std::string escape_label_value(std::string_view v);

}  // namespace exitpool::admin
