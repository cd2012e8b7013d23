// libFuzzer target: the incremental chunked-body scanner (proto/http_head.hpp).
#include <cstddef>
#include <cstdint>

#include "chunked_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exitpool::fuzz;
  const auto body = as_view(data, size);
  input_rng rng(body);
  check_chunked(body, rng);
  return 0;
}
