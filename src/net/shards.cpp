#include "net/shards.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace exitpool::net {

shards::shards(int count, std::string name) : name_(std::move(name)) {
  for (int i = 0; i < count; ++i) {
    // One thread runs each context, and every socket of a shard is used on its thread only
    // (other threads post to it): the reactor's per-descriptor locks are not needed, and a
    // new tunnel takes and releases them some twenty times.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
  }
}

shards::~shards() {
  stop();
  join();
}

void shards::start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([ctx = contexts_[i].get(), name = name_ + "-" + std::to_string(i)] {
      pthread_setname_np(pthread_self(), name.c_str());
      // Sessions catch their own exceptions (co_spawn's completion); a completion handler
      // (a tunnel relay's, a timer's) that throws, say bad_alloc, ends only the operation
      // it belonged to: the shard logs it and goes on serving. Asio allows run() again.
      for (;;) {
        try {
          ctx->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("{}: a completion handler failed: {}", name, e.what());
        }
      }
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
