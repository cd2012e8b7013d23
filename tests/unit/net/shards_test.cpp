#include "net/shards.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <stdexcept>

namespace exitpool::net {
namespace {

TEST(Shards, AThrowingHandlerEndsOnlyItself) {
  shards sh(1);
  std::promise<void> later;
  // Queued before the thread starts: the shard has work from its first run().
  boost::asio::post(sh.context(0), [] { throw std::runtime_error("handler failed"); });
  boost::asio::post(sh.context(0), [&] { later.set_value(); });
  sh.start();
  EXPECT_EQ(later.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  sh.shutdown();
}

}  // namespace
}  // namespace exitpool::net
