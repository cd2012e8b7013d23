#include "net/shards.hpp"

#include <pthread.h>

#include <string>

namespace exitpool::net {

shards::shards(int count) {
  for (int i = 0; i < count; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
}

shards::~shards() {
  stop();
  join();
}

void shards::start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([ctx = contexts_[i].get(), i] {
      std::string name = "shard-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      ctx->run();
    });
  }
}

void shards::stop() {
  for (auto& c : contexts_) {
    c->stop();
  }
}

void shards::join() {
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
}

void shards::shutdown() {
  stop();
  join();
  contexts_.clear();
}

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace exitpool::net
