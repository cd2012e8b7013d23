#include "fetch/warc.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace exitpool::fetch {

namespace {
// Inflates concatenated gzip members; also returns how many there were.
std::string gunzip_all(std::string_view gz, int& members) {
  std::string out;
  members = 0;
  while (!gz.empty()) {
    z_stream zs{};
    EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    zs.avail_in = static_cast<uInt>(gz.size());
    char buf[4096];
    int rc = Z_OK;
    while (rc == Z_OK) {
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = sizeof buf;
      rc = inflate(&zs, Z_NO_FLUSH);
      out.append(buf, sizeof buf - zs.avail_out);
    }
    EXPECT_EQ(rc, Z_STREAM_END);
    gz.remove_prefix(gz.size() - zs.avail_in);
    inflateEnd(&zs);
    ++members;
  }
  return out;
}
}  // namespace

TEST(warc, record_ids_are_v4_uuids) {
  const auto id = warc_record_id(0x0123456789abcdefULL, 0xfedcba9876543210ULL);
  EXPECT_EQ(id, "<urn:uuid:01234567-89ab-4def-bedc-ba9876543210>");
  EXPECT_EQ(warc_date_now().size(), std::string("2026-11-26T10:29:00.123456Z").size());
}

TEST(warc, request_head_drops_proxy_credentials) {
  EXPECT_EQ(warc_request_head("GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic eDp5\r\n"
                              "Accept: */*\r\n\r\n"),
            "GET http://a/ HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
}

TEST(warc, response_block_replaces_chunked_framing_by_a_length) {
  EXPECT_EQ(warc_response_block("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: x\r\n\r\n", "hello"),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(warc_response_block("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "hi"),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
}

TEST(warc, records_are_gzip_members_with_exact_lengths) {
  std::string gz;
  const std::string block = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  append_warc_gz(gz, {"response", "<urn:uuid:1>", "2026-01-01T00:00:00Z", "http://a/", "127.0.0.1", "",
                      "application/http;msgtype=response", block});
  append_warc_gz(gz, {"request", "<urn:uuid:2>", "2026-01-01T00:00:00Z", "http://a/", "", "<urn:uuid:1>",
                      "application/http;msgtype=request", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"});
  int members = 0;
  const std::string text = gunzip_all(gz, members);
  EXPECT_EQ(members, 2);
  EXPECT_EQ(
      text,
      "WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:1>\r\nWARC-Date: 2026-01-01T00:00:00Z\r\n"
      "WARC-Target-URI: http://a/\r\nWARC-IP-Address: 127.0.0.1\r\nContent-Type: "
      "application/http;msgtype=response\r\nContent-Length: " +
          std::to_string(block.size()) + "\r\n\r\n" + block +
          "\r\n\r\n"
          "WARC/1.1\r\nWARC-Type: request\r\nWARC-Record-ID: <urn:uuid:2>\r\nWARC-Date: 2026-01-01T00:00:00Z\r\n"
          "WARC-Target-URI: http://a/\r\nWARC-Concurrent-To: <urn:uuid:1>\r\nContent-Type: "
          "application/http;msgtype=request\r\nContent-Length: 27\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n\r\n");
}

}  // namespace exitpool::fetch
