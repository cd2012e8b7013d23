#include "fetch/scheduler.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace exitpool::fetch {
namespace {

using namespace std::chrono_literals;

struct fake_job {
  std::string host;
  int id = 0;
};

const time_point t0 = time_point{} + 1h;

// Records what dispatch offers; answers `answer` (started by default) and keeps the
// jobs it took, as the fetcher's in-flight table does.
struct starter {
  std::vector<int> offered;
  std::vector<std::unique_ptr<fake_job>> taken;
  start_result answer = start_result::started();

  auto fn() {
    return [this](std::unique_ptr<fake_job>& j) {
      offered.push_back(j->id);
      if (answer.k == start_result::kind::started || answer.k == start_result::kind::finished) {
        taken.push_back(std::move(j));
      }
      return answer;
    };
  }
};

struct fixture {
  explicit fixture(scheduler_config c) : s(c) {}
  host_scheduler<fake_job> s;
  int next_id = 0;

  int push(const std::string& host) {
    s.push(host, std::make_unique<fake_job>(fake_job{host, next_id}));
    return next_id++;
  }
  std::vector<int> dispatch(time_point now, start_result answer = start_result::started()) {
    starter st;
    st.answer = answer;
    s.dispatch(now, st.fn());
    return st.offered;
  }
};

using ids = std::vector<int>;

TEST(host_scheduler, per_host_cap_holds_and_a_finished_request_frees_a_slot) {
  fixture f({.per_host = 2});
  for (int i = 0; i < 5; ++i) {
    f.push("a.test");
  }
  EXPECT_EQ(f.dispatch(t0), (ids{0, 1}));
  EXPECT_EQ(f.dispatch(t0 + 1s), ids{});
  f.s.done("a.test", t0 + 1s, {});
  EXPECT_EQ(f.dispatch(t0 + 1s), ids{2});
  EXPECT_EQ(f.dispatch(t0 + 2s), ids{});
}

TEST(host_scheduler, hosts_take_turns_and_have_their_own_caps) {
  fixture f({.per_host = 1});
  f.push("a.test");
  f.push("a.test");
  f.push("b.test");
  f.push("b.test");
  EXPECT_EQ(f.dispatch(t0), (ids{0, 2}));
  f.s.done("b.test", t0, {});
  EXPECT_EQ(f.dispatch(t0), ids{3});
}

TEST(host_scheduler, delay_spaces_starts_and_the_host_wakes_at_its_ready_time) {
  fixture f({.per_host = 8, .delay = 500ms});
  for (int i = 0; i < 3; ++i) {
    f.push("a.test");
  }
  EXPECT_EQ(f.dispatch(t0), ids{0});
  EXPECT_EQ(f.dispatch(t0 + 499ms), ids{});
  ASSERT_TRUE(f.s.next_wake());
  EXPECT_EQ(*f.s.next_wake(), t0 + 500ms);
  f.s.wake_due(t0 + 499ms);
  EXPECT_FALSE(f.s.has_runnable());
  f.s.wake_due(t0 + 500ms);
  EXPECT_TRUE(f.s.has_runnable());
  EXPECT_EQ(f.dispatch(t0 + 500ms), ids{1});
  f.s.wake_due(t0 + 1000ms);
  EXPECT_EQ(f.dispatch(t0 + 1000ms), ids{2});
}

TEST(host_scheduler, no_slot_keeps_the_job_and_its_host_first_in_line) {
  fixture f({.per_host = 8});
  f.push("a.test");
  f.push("b.test");
  EXPECT_EQ(f.dispatch(t0, start_result::no_slot()), ids{0});  // dispatch stops there
  EXPECT_EQ(f.dispatch(t0), (ids{0, 1}));
}

TEST(host_scheduler, a_host_waiting_for_an_exit_wakes_at_its_ready_time_with_the_same_job) {
  fixture f({.per_host = 8});
  f.push("a.test");
  f.push("a.test");
  f.push("b.test");
  std::vector<int> offered;
  std::vector<std::unique_ptr<fake_job>> taken;
  f.s.dispatch(t0, [&](std::unique_ptr<fake_job>& j) {
    offered.push_back(j->id);
    if (j->host == "a.test") {
      return start_result::wait(t0 + 1s);  // no exit has capacity for a.test
    }
    taken.push_back(std::move(j));
    return start_result::started();
  });
  EXPECT_EQ(offered, (ids{0, 2}));  // the whole host waits; b.test does not
  EXPECT_EQ(f.dispatch(t0 + 500ms), ids{});
  ASSERT_TRUE(f.s.next_wake());
  EXPECT_EQ(*f.s.next_wake(), t0 + 1s);
  f.s.wake_due(t0 + 1s);
  EXPECT_EQ(f.dispatch(t0 + 1s), (ids{0, 1}));
}

TEST(host_scheduler, finished_jobs_do_not_count_in_flight) {
  fixture f({.per_host = 1});
  f.push("a.test");
  f.push("a.test");
  f.push("a.test");
  EXPECT_EQ(f.dispatch(t0, start_result::finished()), (ids{0, 1, 2}));
}

TEST(host_scheduler, a_retry_joins_the_front_of_its_queue_when_its_backoff_ends) {
  fixture f({.per_host = 1});
  f.push("a.test");
  f.push("a.test");
  starter st;
  f.s.dispatch(t0, st.fn());
  ASSERT_EQ(st.offered, ids{0});
  f.s.done("a.test", t0 + 100ms, {});
  f.s.retry_at("a.test", std::move(st.taken.front()), t0 + 1s);
  EXPECT_EQ(f.dispatch(t0 + 500ms), ids{1});  // the queue goes on meanwhile
  f.push("a.test");
  f.s.done("a.test", t0 + 600ms, {});
  f.s.wake_due(t0 + 1s);
  EXPECT_EQ(f.dispatch(t0 + 1s), ids{0});  // ahead of job 2
}

TEST(host_scheduler, idle_host_is_forgotten_and_a_throttled_one_kept_for_its_window) {
  fixture plain({.per_host = 2});
  plain.push("a.test");
  plain.dispatch(t0);
  plain.s.sweep(t0);
  EXPECT_EQ(plain.s.host_count(), 1u);  // in flight
  plain.s.done("a.test", t0 + 1s, {});
  plain.s.sweep(t0 + 1s);
  EXPECT_EQ(plain.s.host_count(), 0u);

  fixture auto_({.per_host = 4, .auto_throttle = true});
  auto_.push("a.test");
  auto_.dispatch(t0);
  auto_.s.done("a.test", t0 + 1s, {.ok = true, .ttfb_us = 1000});  // window 2
  auto_.s.sweep(t0 + 60s);
  EXPECT_EQ(auto_.s.host_count(), 1u);
  auto_.push("a.test");
  auto_.push("a.test");
  auto_.push("a.test");
  EXPECT_EQ(auto_.dispatch(t0 + 60s), (ids{1, 2}));  // the window was kept
  auto_.s.done("a.test", t0 + 60s, {});
  auto_.s.done("a.test", t0 + 60s, {});
  auto_.dispatch(t0 + 60s);
  auto_.s.done("a.test", t0 + 61s, {});
  auto_.s.sweep(t0 + 61s + 59s);
  EXPECT_EQ(auto_.s.host_count(), 1u);
  auto_.s.sweep(t0 + 61s + 60s);
  EXPECT_EQ(auto_.s.host_count(), 0u);
  auto_.push("a.test");
  auto_.push("a.test");
  EXPECT_EQ(auto_.dispatch(t0 + 200s), ids{4});  // a new host starts at a window of 1
}

TEST(host_scheduler, auto_throttle_starts_at_one_and_opens_per_success) {
  fixture f({.per_host = 8, .auto_throttle = true});
  for (int i = 0; i < 10; ++i) {
    f.push("a.test");
  }
  EXPECT_EQ(f.dispatch(t0), ids{0});
  f.s.done("a.test", t0 + 10ms, {.ok = true, .ttfb_us = 10000});
  EXPECT_EQ(f.dispatch(t0 + 10ms), (ids{1, 2}));
  f.s.done("a.test", t0 + 20ms, {.overload = true});  // halved to 1, with one still in flight
  EXPECT_EQ(f.dispatch(t0 + 20ms), ids{});
}

TEST(aimd_window, slow_start_up_to_the_cap) {
  aimd_window w;
  EXPECT_EQ(w.limit(), 1);
  for (int i = 0; i < 3; ++i) {
    w.update({.ok = true, .ttfb_us = 1000}, t0, 8);
  }
  EXPECT_EQ(w.limit(), 4);
  for (int i = 0; i < 10; ++i) {
    w.update({.ok = true, .ttfb_us = 1000}, t0, 8);
  }
  EXPECT_EQ(w.cwnd(), 8.0);
}

TEST(aimd_window, overload_halves_once_per_burst_then_grows_by_one_per_window) {
  aimd_window w;
  for (int i = 0; i < 7; ++i) {
    w.update({.ok = true, .ttfb_us = 1000}, t0, 8);
  }
  ASSERT_EQ(w.cwnd(), 8.0);
  w.update({.overload = true}, t0 + 1s, 8);
  EXPECT_EQ(w.cwnd(), 4.0);
  w.update({.overload = true}, t0 + 1s + 50ms, 8);  // the same burst
  EXPECT_EQ(w.cwnd(), 4.0);
  w.update({.overload = true}, t0 + 1s + 101ms, 8);
  EXPECT_EQ(w.cwnd(), 2.0);
  // Congestion avoidance from ssthresh = 2: +1/cwnd per success.
  w.update({.ok = true, .ttfb_us = 1000}, t0 + 2s, 8);
  EXPECT_DOUBLE_EQ(w.cwnd(), 2.5);
  w.update({.ok = true, .ttfb_us = 1000}, t0 + 2s, 8);
  EXPECT_DOUBLE_EQ(w.cwnd(), 2.9);
  EXPECT_EQ(w.limit(), 2);
}

TEST(aimd_window, a_slow_success_shrinks_and_a_failure_that_is_no_overload_changes_nothing) {
  aimd_window w;
  for (int i = 0; i < 3; ++i) {
    w.update({.ok = true, .ttfb_us = 10000}, t0, 8);
  }
  ASSERT_EQ(w.cwnd(), 4.0);
  w.update({.ok = true, .ttfb_us = 4 * 10000 + 20001}, t0, 8);  // the target is queueing
  EXPECT_DOUBLE_EQ(w.cwnd(), 3.75);
  w.update({.ok = true, .ttfb_us = 4 * 10000 + 20000}, t0, 8);  // not yet slow: slow start goes on
  EXPECT_DOUBLE_EQ(w.cwnd(), 4.75);
  w.update({}, t0, 8);  // e.g. connection refused
  EXPECT_DOUBLE_EQ(w.cwnd(), 4.75);
  w.update({.overload = true}, t0 + 1s, 8);
  w.update({.overload = true}, t0 + 1s, 8);
  w.update({.overload = true}, t0 + 2s, 8);
  w.update({.overload = true}, t0 + 3s, 8);
  w.update({.overload = true}, t0 + 4s, 8);
  EXPECT_EQ(w.cwnd(), 1.0);  // never below 1
}

}  // namespace
}  // namespace exitpool::fetch
