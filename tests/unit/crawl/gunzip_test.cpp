#include "crawl/gunzip.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <string>

namespace exitpool::crawl {
namespace {

// `n` zero bytes, gzipped fast (1 MiB of input at a time): a "bomb".
std::string gzip_zeros(std::size_t n) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string zeros(1u << 20, '\0');
  std::string out;
  char buf[1u << 16];
  for (std::size_t left = n;;) {
    const std::size_t take = std::min(left, zeros.size());
    zs.next_in = reinterpret_cast<Bytef*>(zeros.data());
    zs.avail_in = static_cast<uInt>(take);
    left -= take;
    const int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    int rc = Z_OK;
    do {
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = sizeof buf;
      rc = deflate(&zs, flush);
      out.append(buf, sizeof buf - zs.avail_out);
    } while (zs.avail_out == 0);
    if (rc == Z_STREAM_END) {
      break;
    }
  }
  deflateEnd(&zs);
  return out;
}

// gzip(1)'s format, one member, from zlib's deflate.
std::string gzip_of(const std::string& text) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(text.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

const std::string sitemap = R"(<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">)"
                            "<url><loc>http://a.test/1</loc></url><url><loc>http://a.test/2</loc></url></urlset>";

TEST(Gunzip, Valid) {
  const auto r = gunzip(gzip_of(sitemap));
  EXPECT_EQ(r.status, gunzip_status::ok) << r.error;
  EXPECT_EQ(r.data, sitemap);
  EXPECT_TRUE(r.error.empty());
  // Members one after another (as `cat a.gz b.gz`), then bytes that are not a member.
  const auto two = gunzip(gzip_of("abc") + gzip_of("def") + std::string(8, '\0'));
  EXPECT_EQ(two.status, gunzip_status::ok) << two.error;
  EXPECT_EQ(two.data, "abcdef");
  // Empty content is a valid stream.
  EXPECT_EQ(gunzip(gzip_of("")).status, gunzip_status::ok);
  // Larger than zlib's and our chunks.
  std::string big;
  for (int i = 0; big.size() < 300'000; ++i) {
    big += "<url><loc>http://a.test/" + std::to_string(i) + "</loc></url>\n";
  }
  const auto b = gunzip(gzip_of(big));
  EXPECT_EQ(b.status, gunzip_status::ok);
  EXPECT_EQ(b.data, big);
}

TEST(Gunzip, NotGzip) {
  for (const std::string& s : {std::string(), std::string("\x1f"), sitemap, std::string("\x1f\x8a rest")}) {
    const auto r = gunzip(s);
    EXPECT_EQ(r.status, gunzip_status::not_gzip) << s;
    EXPECT_TRUE(r.data.empty());
    EXPECT_FALSE(r.error.empty());
  }
  EXPECT_TRUE(is_gzip("\x1f\x8b"));
  EXPECT_FALSE(is_gzip("<?xml"));
}

TEST(Gunzip, TruncatedKeepsWhatCameBefore) {
  std::string text;
  for (int i = 0; text.size() < 200'000; ++i) {
    text += std::to_string(i * 7919 % 100'003) + ",";  // compresses, but not to nothing
  }
  const std::string z = gzip_of(text);
  for (const std::size_t cut : {std::size_t{3}, std::size_t{10}, z.size() / 2, z.size() - 4, z.size() - 1}) {
    const auto r = gunzip(std::string_view(z).substr(0, cut));
    EXPECT_EQ(r.status, gunzip_status::truncated) << cut;
    EXPECT_EQ(text.compare(0, r.data.size(), r.data), 0) << "not a prefix at cut " << cut;
  }
  EXPECT_LT(gunzip(std::string_view(z).substr(0, z.size() / 2)).data.size(), text.size());
  // Cut in the trailer (CRC-32, length): all the data, but no proof it is right.
  EXPECT_EQ(gunzip(std::string_view(z).substr(0, z.size() - 4)).data, text);
}

TEST(Gunzip, CorruptIsCaught) {
  std::string z = gzip_of(sitemap);
  std::string bad_crc = z;
  bad_crc[bad_crc.size() - 6] = static_cast<char>(bad_crc[bad_crc.size() - 6] ^ 0x55);  // in the CRC-32
  EXPECT_EQ(gunzip(bad_crc).status, gunzip_status::corrupt);
  std::string bad_method = z;
  bad_method[2] = 7;  // not deflate
  const auto m = gunzip(bad_method);
  EXPECT_EQ(m.status, gunzip_status::corrupt);
  EXPECT_FALSE(m.error.empty());
  std::string garbage = "\x1f\x8b\x08";
  garbage += std::string(7, '\0');
  garbage += std::string(100, '\xff');  // a header, then no valid deflate data
  EXPECT_EQ(gunzip(garbage).status, gunzip_status::corrupt);
}

TEST(Gunzip, BoundHoldsAgainstABomb) {
  // Exactly the bound is fine; one byte more is not.
  EXPECT_EQ(gunzip(gzip_of(std::string(1000, 'a')), 1000).status, gunzip_status::ok);
  const auto over = gunzip(gzip_of(std::string(1001, 'a')), 1000);
  EXPECT_EQ(over.status, gunzip_status::too_large);
  EXPECT_EQ(over.data.size(), 1000u);
  // 1 GiB of zeros (64 members of 16 MiB, as `cat` would join them) in about 1 MiB: stops
  // at sitemaps.org's 50 MB.
  const std::string member = gzip_zeros(std::size_t{16} << 20);
  EXPECT_EQ(gunzip(member, std::size_t{16} << 20).status, gunzip_status::ok);
  std::string bomb;
  for (int i = 0; i < 64; ++i) {
    bomb += member;
  }
  EXPECT_LT(bomb.size(), 2u << 20);
  const auto r = gunzip(bomb);
  EXPECT_EQ(r.status, gunzip_status::too_large);
  EXPECT_EQ(r.data.size(), sitemap_max_bytes);
  EXPECT_LE(r.data.capacity(), 2 * sitemap_max_bytes);  // the string's doubling at most
  EXPECT_NE(r.error.find("more than 52428800 bytes"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace exitpool::crawl
