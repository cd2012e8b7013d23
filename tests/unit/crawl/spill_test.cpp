#include "crawl/spill.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace exitpool::crawl {
namespace {

namespace fs = std::filesystem;

class Spill : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("spill_test." + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "out.jsonl.spill").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static queued_url url(int i) {
    return {"http://a.test/p/" + std::to_string(i) + "?q=" + std::to_string(i * 7), static_cast<std::uint64_t>(i % 3),
            static_cast<std::uint32_t>(i % 11), static_cast<std::uint8_t>(i % 4)};
  }
  static void expect_same(const queued_url& got, const queued_url& want) {
    EXPECT_EQ(got.url, want.url);
    EXPECT_EQ(got.lease, want.lease);
    EXPECT_EQ(got.depth, want.depth);
    EXPECT_EQ(got.hops, want.hops);
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(Spill, LinesRoundTrip) {
  const queued_url u{"http://a.test/x?y=%20", 42, 7, 3};
  const std::string line = spill_file::encode(u);
  EXPECT_EQ(line, "7 3 42 http://a.test/x?y=%20\n");
  queued_url back;
  ASSERT_TRUE(spill_file::decode(std::string_view(line).substr(0, line.size() - 1), back));
  expect_same(back, u);
  for (const char* bad : {"", "1 2 3", "1 2 3 ", "x 2 3 http://a", "1 256 3 http://a", "1 2 3 http://a b",
                          "1 2 -3 http://a", "1  2 3 http://a"}) {
    EXPECT_FALSE(spill_file::decode(bad, back)) << bad;
  }
}

TEST_F(Spill, OrderKeptThroughMemoryBlocksAndTail) {
  spill_file f(path_);
  const spill_queue::limits l{100, 16};
  spill_queue q;
  std::vector<int> popped;
  int next = 0;
  // Pushes and pops interleaved: memory fills, blocks go to the file, the tail is partial.
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 90; ++i) {
      q.push(url(next++), &f, l);
    }
    EXPECT_LE(q.size() - q.spilled(), 100u + 16u);  // memory: at most memory_items + one block being filled
    for (int i = 0; i < 60; ++i) {
      const auto u = q.pop(&f);
      popped.push_back(std::stoi(u.url.substr(std::string("http://a.test/p/").size())));
    }
  }
  EXPECT_GT(q.spilled(), 0u);
  while (!q.empty()) {
    const auto u = q.pop(&f);
    popped.push_back(std::stoi(u.url.substr(std::string("http://a.test/p/").size())));
  }
  ASSERT_EQ(popped.size(), static_cast<std::size_t>(next));
  for (int i = 0; i < next; ++i) {
    ASSERT_EQ(popped[static_cast<std::size_t>(i)], i);
  }
  // Refilled: pushing again after the queue drained uses memory first.
  q.push(url(1), &f, l);
  EXPECT_EQ(q.spilled(), 0u);
  expect_same(q.pop(&f), url(1));
}

TEST_F(Spill, NoLimitKeepsEverythingInMemory) {
  spill_queue q;
  for (int i = 0; i < 1000; ++i) {
    q.push(url(i), nullptr, spill_queue::limits{0, 16});
  }
  EXPECT_EQ(q.spilled(), 0u);
  EXPECT_EQ(q.size(), 1000u);
  expect_same(q.pop(nullptr), url(0));
}

TEST_F(Spill, BlocksSurviveReopen) {
  std::vector<spill_file::block> blocks;
  {
    spill_file f(path_);
    for (int b = 0; b < 3; ++b) {
      std::vector<queued_url> urls;
      for (int i = 0; i < 5; ++i) {
        urls.push_back(url(b * 5 + i));
      }
      blocks.push_back(f.append(urls));
    }
    EXPECT_EQ(blocks[2].line, 11u);
  }
  spill_file again(path_, false);  // kept: read what the first one wrote, append after it
  std::vector<queued_url> out;
  for (const auto& b : blocks) {
    again.read(b, out);
  }
  ASSERT_EQ(out.size(), 15u);
  for (int i = 0; i < 15; ++i) {
    expect_same(out[static_cast<std::size_t>(i)], url(i));
  }
  const auto more = again.append({url(99)});
  EXPECT_EQ(more.line, 16u);
  EXPECT_EQ(more.offset, blocks[2].offset + blocks[2].bytes);
  out.clear();
  again.read(more, out);
  expect_same(out.at(0), url(99));
  // A fresh spill file starts empty.
  spill_file fresh(path_);
  EXPECT_EQ(fresh.size(), 0u);
}

TEST_F(Spill, CutOrChangedFileIsAClearError) {
  spill_file f(path_);
  f.append({url(0), url(1)});
  const auto b = f.append({url(2), url(3), url(4)});
  std::vector<queued_url> out;
  // Cut inside the second block.
  fs::resize_file(path_, b.offset + 10);
  try {
    f.read(b, out);
    FAIL() << "a cut file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path_ + ":3: the spill file ends early"), std::string::npos) << e.what();
  }
  // Overwritten with something else: the bad line is named.
  {
    std::ofstream w(path_, std::ios::binary | std::ios::trunc);
    w << spill_file::encode(url(0)) << spill_file::encode(url(1)) << spill_file::encode(url(2))
      << "garbage in the middle of the file\n"
      << spill_file::encode(url(4));
  }
  spill_file g(path_, false);
  std::vector<queued_url> out2;
  spill_file::block whole{0, 1, static_cast<std::uint32_t>(g.size()), 5};
  try {
    g.read(whole, out2);
    FAIL() << "a changed file was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path_ + ":4: not a spill line"), std::string::npos) << e.what();
  }
  // A spill file where one cannot be written: a clear error naming it.
  EXPECT_THROW(spill_file((dir_ / "missing" / "x.spill").string()), std::runtime_error);
}

TEST_F(Spill, BlocksReadBackGiveTheirDiskBack) {
  // Does this file system punch holes? (ext4, xfs, tmpfs do.) Where it does not, the bytes stay.
  const std::string probe = (dir_ / "probe").string();
  const int pfd = ::open(probe.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(pfd, 0);
  ASSERT_EQ(::ftruncate(pfd, 1 << 20), 0);
  const bool holes = ::fallocate(pfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1 << 20) == 0;
  ::close(pfd);

  spill_file f(path_);
  const spill_queue::limits l{100, 64};
  spill_queue q;
  for (int i = 0; i < 20000; ++i) {
    q.push(url(i), &f, l);
  }
  const std::uint64_t written = f.size();
  EXPECT_GT(written, 500'000u);
  EXPECT_EQ(f.live_bytes(), written);
  for (int i = 0; i < 19000; ++i) {
    expect_same(q.pop(&f), url(i));
  }
  // About 1,000 URLs are still queued; the file's apparent size is unchanged, its disk use is not.
  EXPECT_EQ(f.size(), written);
  EXPECT_LT(f.live_bytes(), written / 15);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  const auto on_disk = static_cast<std::uint64_t>(st.st_blocks) * 512;
  if (holes) {
    EXPECT_LT(on_disk, written / 10) << "holes were not punched";
  } else {
    EXPECT_GE(on_disk + 4096, written) << "no holes on this file system: every byte stays";
  }
  for (int i = 19000; i < 20000; ++i) {
    expect_same(q.pop(&f), url(i));
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(f.live_bytes(), 0u);

  // Two hosts whose blocks interleave in the file (each smaller than a page): drained one
  // after the other, the merged ranges are given back too.
  spill_queue a;
  spill_queue b;
  for (int i = 0; i < 20000; ++i) {
    a.push(url(i), &f, l);
    b.push(url(i + 1), &f, l);
  }
  for (int i = 0; i < 20000; ++i) {
    expect_same(a.pop(&f), url(i));
  }
  for (int i = 0; i < 20000; ++i) {
    expect_same(b.pop(&f), url(i + 1));
  }
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  if (holes) {
    EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, f.size() / 20) << "merged ranges were not punched";
  }
  EXPECT_EQ(f.live_bytes(), 0u);
}

}  // namespace
}  // namespace exitpool::crawl
