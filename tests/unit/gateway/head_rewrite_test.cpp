#include "gateway/head_rewrite.hpp"

#include <gtest/gtest.h>

#include <string>

#include "proto/base64.hpp"

namespace exitpool::gateway {
namespace {

struct request {
  proto::request_head head;
  proto::absolute_target target;
};

request parse(const std::string& text) {
  auto r = proto::parse_request_head(text);
  EXPECT_EQ(r.status, proto::parse_status::complete) << r.error;
  auto t = proto::parse_absolute_target(r.head.target);
  EXPECT_TRUE(t.has_value()) << r.head.target;
  return {r.head, t.value_or(proto::absolute_target{})};
}

proto::exit_spec exit_of(proto::exit_scheme scheme, std::string user = {}, std::string pass = {}) {
  proto::exit_spec s;
  s.scheme = scheme;
  s.user = std::move(user);
  s.pass = std::move(pass);
  return s;
}

bool has_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

const std::string client_request =
    "GET http://example.com:8080/a?b=c HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "User-Agent: t\r\n"
    "Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n"
    "Proxy-Connection: keep-alive\r\n"
    "Connection: keep-alive, X-Hop\r\n"
    "Keep-Alive: timeout=5\r\n"
    "X-Hop: 1\r\n"
    "TE: trailers\r\n"
    "Upgrade: websocket\r\n"
    "Expect: 100-continue\r\n"
    "Content-Length: 0\r\n"
    "Accept: */*\r\n"
    "\r\n";

TEST(UpstreamRequestHead, DirectAndSocksExitsGetOriginFormWithoutHopByHop) {
  for (auto scheme : {proto::exit_scheme::direct, proto::exit_scheme::socks5, proto::exit_scheme::socks5h}) {
    SCOPED_TRACE(proto::scheme_name(scheme));
    const auto r = parse(client_request);
    const auto out = upstream_request_head(r.head, r.target, exit_of(scheme, "u", "p"), false, false);
    EXPECT_TRUE(out.starts_with("GET /a?b=c HTTP/1.1\r\n")) << out;
    EXPECT_TRUE(out.ends_with("\r\nConnection: close\r\n\r\n")) << out;
    for (const char* kept :
         {"Host: example.com:8080", "User-Agent: t", "Content-Length: 0", "Accept: */*", "Expect: 100-continue"}) {
      EXPECT_TRUE(has_line(out, kept)) << kept << "\n" << out;
    }
    // The client's credentials never reach the target; neither do hop-by-hop headers,
    // those named in Connection among them. The exit's credentials are not sent either.
    for (const char* dropped : {"Proxy-Authorization", "Proxy-Connection", "Keep-Alive", "X-Hop", "TE:", "Upgrade",
                                "YWxpY2U6c2VjcmV0", "Connection: keep-alive"}) {
      EXPECT_EQ(out.find(dropped), std::string::npos) << dropped << "\n" << out;
    }
  }
}

TEST(UpstreamRequestHead, HttpProxyExitsGetAbsoluteFormAndTheirOwnCredentials) {
  const auto r = parse(client_request);
  for (auto scheme : {proto::exit_scheme::http, proto::exit_scheme::https}) {
    const auto out = upstream_request_head(r.head, r.target, exit_of(scheme, "exituser", "exit:pw"), false, true);
    EXPECT_TRUE(out.starts_with("GET http://example.com:8080/a?b=c HTTP/1.1\r\n")) << out;
    EXPECT_TRUE(has_line(out, "Proxy-Authorization: Basic " + proto::base64_encode("exituser:exit:pw"))) << out;
    EXPECT_EQ(out.find("YWxpY2U6c2VjcmV0"), std::string::npos) << out;
    EXPECT_TRUE(out.ends_with("\r\nConnection: keep-alive\r\n\r\n")) << out;
  }
  const auto anonymous = upstream_request_head(r.head, r.target, exit_of(proto::exit_scheme::http), false, false);
  EXPECT_EQ(anonymous.find("Proxy-Authorization"), std::string::npos) << anonymous;
}

TEST(UpstreamRequestHead, ExpectDroppedWhenAnsweredHere) {
  const auto r = parse(client_request);
  const auto out = upstream_request_head(r.head, r.target, exit_of(proto::exit_scheme::direct), true, false);
  EXPECT_EQ(out.find("Expect"), std::string::npos) << out;
}

TEST(UpstreamRequestHead, HostIsTheTargetsAuthority) {
  struct tc {
    std::string target;
    std::string host;
  };
  for (const auto& c : {tc{"http://example.com/", "example.com"}, tc{"http://[2001:db8::1]:81/", "[2001:db8::1]:81"},
                        tc{"http://example.com:8080", "example.com:8080"}, tc{"http://Example.COM?q", "Example.COM"}}) {
    const auto r = parse("GET " + c.target + " HTTP/1.0\r\nAccept: */*\r\n\r\n");
    const auto out = upstream_request_head(r.head, r.target, exit_of(proto::exit_scheme::direct), false, false);
    EXPECT_TRUE(has_line(out, "Host: " + c.host)) << out;
    // Always HTTP/1.1 towards the exit.
    EXPECT_NE(out.find(" HTTP/1.1\r\n"), std::string::npos) << out;
  }
  // RFC 9112 section 3.2.2: a Host that disagrees with the absolute-form target is
  // replaced, towards the target and towards an HTTP proxy exit alike.
  for (auto scheme : {proto::exit_scheme::direct, proto::exit_scheme::socks5h, proto::exit_scheme::http}) {
    const auto r = parse("GET http://a.example:81/x HTTP/1.1\r\nhost: b.example\r\nAccept: */*\r\n\r\n");
    const auto out = upstream_request_head(r.head, r.target, exit_of(scheme), false, false);
    EXPECT_NE(out.find(" HTTP/1.1\r\nHost: a.example:81\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("b.example"), std::string::npos) << out;
    EXPECT_EQ(out.find("host:"), std::string::npos) << out;
  }
}

TEST(UpstreamRequestHead, MaxForwardsReplacedWhenGiven) {
  const auto r = parse("TRACE http://a/ HTTP/1.1\r\nMax-Forwards: 5\r\nAccept: */*\r\n\r\n");
  const auto out = upstream_request_head(r.head, r.target, exit_of(proto::exit_scheme::direct), false, false, 4);
  EXPECT_TRUE(has_line(out, "Max-Forwards: 4")) << out;
  EXPECT_EQ(out.find("Max-Forwards: 5"), std::string::npos) << out;
  const auto same = upstream_request_head(r.head, r.target, exit_of(proto::exit_scheme::direct), false, false);
  EXPECT_TRUE(has_line(same, "Max-Forwards: 5")) << same;
}

TEST(OwnAnswer, TraceEchoesTheHeadWithoutSecrets) {
  const auto r = parse(
      "TRACE http://a/x HTTP/1.1\r\nMax-Forwards: 0\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n"
      "Authorization: Bearer t0k\r\nCookie: s=1\r\nX-Probe: 1\r\n\r\n");
  const auto out = own_answer(r.head, true);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out;
  EXPECT_NE(out.find("Content-Type: message/http\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Connection: keep-alive\r\n"), std::string::npos) << out;
  const auto body = out.substr(out.find("\r\n\r\n") + 4);
  EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos) << out;
  EXPECT_TRUE(body.starts_with("TRACE http://a/x HTTP/1.1\r\n")) << body;
  EXPECT_NE(body.find("X-Probe: 1\r\n"), std::string::npos) << body;
  for (const char* secret : {"YWxpY2U6c2VjcmV0", "t0k", "s=1"}) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret;
  }
}

TEST(OwnAnswer, OptionsSaysAllow) {
  const auto r = parse("OPTIONS http://a/ HTTP/1.1\r\nMax-Forwards: 0\r\n\r\n");
  const auto out = own_answer(r.head, false);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n")) << out;
  EXPECT_NE(out.find("\r\nAllow: GET, HEAD, POST"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n")) << out;
}

proto::response_head response(const std::string& text) {
  auto r = proto::parse_response_head(text);
  EXPECT_EQ(r.status, proto::parse_status::complete) << r.error;
  return r.head;
}

TEST(ClientResponseHead, HopByHopStrippedExitNamed) {
  const auto resp = response(
      "HTTP/1.0 404 Not Here\r\n"
      "Content-Type: text/plain\r\n"
      "Connection: keep-alive, X-Private\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Private: 1\r\n"
      "Proxy-Authenticate: Basic realm=\"exit\"\r\n"
      "Content-Length: 5\r\n"
      "\r\n");
  const auto out = client_response_head(resp, "exit-1\r\nX-Evil: 1", true);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 404 Not Here\r\n")) << out;
  EXPECT_TRUE(has_line(out, "Content-Type: text/plain")) << out;
  EXPECT_TRUE(has_line(out, "Content-Length: 5")) << out;
  for (const char* dropped : {"X-Private", "Keep-Alive:", "Proxy-Authenticate", "\r\nX-Evil"}) {
    EXPECT_EQ(out.find(dropped), std::string::npos) << dropped << "\n" << out;
  }
  EXPECT_TRUE(has_line(out, "X-Exitpool-Exit: exit-1  X-Evil: 1")) << out;
  EXPECT_TRUE(out.ends_with("\r\nConnection: keep-alive\r\n\r\n")) << out;
  EXPECT_TRUE(client_response_head(resp, "e", false).ends_with("\r\nConnection: close\r\n\r\n"));
}

TEST(ClientResponseHead, StatusClampedAndReasonKept) {
  proto::response_head resp;
  resp.status = 42;
  resp.reason = "Odd";
  EXPECT_TRUE(client_response_head(resp, "e", false).starts_with("HTTP/1.1 100 Odd\r\n"));
  resp.status = 1234;
  resp.reason = "";
  EXPECT_TRUE(client_response_head(resp, "e", false).starts_with("HTTP/1.1 999 \r\n"));
  resp.status = 503;
  EXPECT_TRUE(client_response_head(resp, "e", false, 100).starts_with("HTTP/1.1 503 \r\n"));
}

}  // namespace
}  // namespace exitpool::gateway
