#include "net/splice.hpp"

#include <gtest/gtest.h>

namespace exitpool::net {
namespace {

TEST(PipePool, LendsIdlePipesAndKeepsAtMostMaxIdle) {
  pipe_pool pool(2);
  splice_pipe first = pool.take();
  EXPECT_FALSE(first.is_open());  // nothing idle yet: the caller's splice opens it
  ASSERT_FALSE(first.open());
  const int fd = first.read_end();
  pool.give(std::move(first));
  EXPECT_EQ(pool.idle(), 1u);
  splice_pipe again = pool.take();
  EXPECT_TRUE(again.is_open());
  EXPECT_EQ(again.read_end(), fd);  // the same pipe, not a new one
  EXPECT_EQ(pool.idle(), 0u);

  pool.give(splice_pipe{});  // a closed pipe (one a failed splice closed) is not kept
  EXPECT_EQ(pool.idle(), 0u);
  splice_pipe a;
  splice_pipe b;
  ASSERT_FALSE(a.open());
  ASSERT_FALSE(b.open());
  pool.give(std::move(again));
  pool.give(std::move(a));
  pool.give(std::move(b));  // beyond max_idle: closed
  EXPECT_EQ(pool.idle(), 2u);
}

}  // namespace
}  // namespace exitpool::net
