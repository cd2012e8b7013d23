#include "proto/socks5.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace exitpool::proto::socks5 {
namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) {
    s.push_back(static_cast<char>(v));
  }
  return s;
}

// Every strict prefix of a complete message must be `incomplete`, never an error.
template <typename Parse>
void expect_prefixes_incomplete(const std::string& msg, Parse parse) {
  for (std::size_t n = 0; n < msg.size(); ++n) {
    const auto r = parse(std::string_view(msg).substr(0, n));
    ASSERT_EQ(r.st, status::incomplete) << "prefix of " << n << " bytes: " << r.error;
  }
  const auto r = parse(msg + "extra");
  ASSERT_EQ(r.st, status::complete) << r.error;
  EXPECT_EQ(r.consumed, msg.size());
}

TEST(socks5_greeting, parse) {
  const auto r = parse_greeting(bytes({5, 2, 0, 2}));
  ASSERT_EQ(r.st, status::complete);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_EQ(r.methods, (std::vector<std::uint8_t>{0, 2}));

  struct row {
    std::string in;
    status st;
  };
  const std::vector<row> rows = {
      {bytes({5}), status::incomplete},        {bytes({5, 3, 0, 1}), status::incomplete},
      {bytes({4, 1, 0}), status::error},      // SOCKS4
      {bytes({5, 0}), status::error},         // no methods
      {"GET / HTTP/1.1\r\n", status::error},  // not SOCKS at all
      {bytes({5, 1, 0xff}), status::complete},
  };
  for (const auto& r2 : rows) {
    EXPECT_EQ(parse_greeting(r2.in).st, r2.st);
  }
}

TEST(socks5_greeting, round_trip_client_to_server) {
  for (bool offer : {false, true}) {
    const std::string g = make_greeting(offer);
    expect_prefixes_incomplete(g, parse_greeting);
    const auto r = parse_greeting(g);
    ASSERT_EQ(r.st, status::complete);
    EXPECT_EQ(r.methods.front(), method::no_auth);
    EXPECT_EQ(r.methods.size(), offer ? 2u : 1u);
    if (offer) {
      EXPECT_EQ(r.methods.back(), method::userpass);
    }
  }
}

TEST(socks5_method_choice, round_trip_server_to_client) {
  for (std::uint8_t m : {method::no_auth, method::userpass, method::none_acceptable}) {
    const std::string c = make_method_choice(m);
    expect_prefixes_incomplete(c, parse_method_choice);
    EXPECT_EQ(parse_method_choice(c).method, m);
  }
  EXPECT_EQ(parse_method_choice(bytes({4, 0})).st, status::error);
}

TEST(socks5_userpass, round_trip_client_to_server) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"alice", "secret"},
      {"alice-country-us-session-x1", "p@ss:word"},
      {std::string(255, 'u'), std::string(255, 'p')},
      {"u", std::string("\0\x01", 2)},
  };
  for (const auto& [user, pass] : rows) {
    const std::string msg = make_userpass(user, pass);
    expect_prefixes_incomplete(msg, parse_userpass);
    const auto r = parse_userpass(msg);
    EXPECT_EQ(r.user, user);
    EXPECT_EQ(r.pass, pass);
  }
}

TEST(socks5_userpass, make_rejects_bad_lengths) {
  // Never a throw (the encoders run inside dials raced against a timer): no message.
  EXPECT_EQ(make_userpass("", "p"), "");
  EXPECT_EQ(make_userpass("u", ""), std::string("\x01\x01u\x00", 4));  // PLEN 0, as curl sends it
  EXPECT_EQ(make_userpass(std::string(256, 'u'), "p"), "");
  EXPECT_EQ(make_userpass("u", std::string(256, 'p')), "");
}

TEST(socks5_userpass, parse_malformed) {
  EXPECT_EQ(parse_userpass(bytes({5, 1, 'a', 1, 'b'})).st, status::error);  // wrong sub-version
  EXPECT_EQ(parse_userpass(bytes({1, 0, 1, 'b'})).st, status::error);       // empty user
  // An empty password is allowed on the server side (clients send one when only a user is given).
  const auto r = parse_userpass(bytes({1, 1, 'a', 0}));
  ASSERT_EQ(r.st, status::complete);
  EXPECT_EQ(r.user, "a");
  EXPECT_EQ(r.pass, "");
}

TEST(socks5_userpass_status, round_trip_server_to_client) {
  for (bool ok : {true, false}) {
    const std::string s = make_userpass_status(ok);
    expect_prefixes_incomplete(s, parse_userpass_status);
    EXPECT_EQ(parse_userpass_status(s).ok, ok);
  }
  EXPECT_TRUE(parse_userpass_status(bytes({5, 0})).ok);  // tolerated server quirk
  EXPECT_EQ(parse_userpass_status(bytes({2, 0})).st, status::error);
  EXPECT_FALSE(parse_userpass_status(bytes({1, 0x7f})).ok);
}

TEST(socks5_request, connect_round_trips) {
  struct row {
    std::string host;
    std::uint16_t port;
    address::kind type;
    std::string parsed_host;
  };
  const std::vector<row> rows = {
      {"1.2.3.4", 80, address::kind::ipv4, "1.2.3.4"},
      {"example.com", 443, address::kind::domain, "example.com"},
      {"::1", 8080, address::kind::ipv6, "::1"},
      {"[2001:db8::5]", 65535, address::kind::ipv6, "2001:db8::5"},
      {"2001:0db8:0000::0005", 1, address::kind::ipv6, "2001:db8::5"},
      {std::string(255, 'a'), 22, address::kind::domain, std::string(255, 'a')},
      {"1.2.3.4.example", 80, address::kind::domain, "1.2.3.4.example"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.host);
    const std::string msg = make_connect(r.host, r.port);
    expect_prefixes_incomplete(msg, parse_request);
    const auto p = parse_request(msg);
    EXPECT_EQ(p.cmd, command::connect);
    EXPECT_EQ(p.dst.type, r.type);
    EXPECT_EQ(p.dst.host, r.parsed_host);
    EXPECT_EQ(p.dst.port, r.port);
  }
  EXPECT_EQ(make_connect(std::string(256, 'a'), 80), "");
  EXPECT_EQ(make_connect("", 80), "");
  EXPECT_EQ(make_connect("[]", 80), "");
  EXPECT_EQ(make_connect(std::string(255, 'a'), 80).size(), 4u + 1 + 255 + 2);
  EXPECT_TRUE(encodable_domain(std::string(255, 'a')));
  EXPECT_FALSE(encodable_domain(std::string(256, 'a')));
}

TEST(socks5_request, wire_format) {
  EXPECT_EQ(make_connect("1.2.3.4", 0x1bb), bytes({5, 1, 0, 1, 1, 2, 3, 4, 0x01, 0xbb}));
  EXPECT_EQ(make_connect("a.b", 80), bytes({5, 1, 0, 3, 3, 'a', '.', 'b', 0, 80}));
}

TEST(socks5_request, malformed) {
  struct row {
    const char* name;
    std::string in;
    reply code;
  };
  const std::vector<row> rows = {
      {"bad_version", bytes({4, 1, 0, 1, 1, 2, 3, 4, 0, 80}), reply::general_failure},
      {"reserved_nonzero", bytes({5, 1, 1, 1, 1, 2, 3, 4, 0, 80}), reply::general_failure},
      {"unknown_atyp", bytes({5, 1, 0, 2, 1, 2, 3, 4, 0, 80}), reply::address_type_not_supported},
      {"atyp_zero", bytes({5, 1, 0, 0}), reply::address_type_not_supported},
      {"empty_domain", bytes({5, 1, 0, 3, 0, 0, 80}), reply::general_failure},
      {"nul_in_domain", bytes({5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80}), reply::general_failure},
      {"space_in_domain", bytes({5, 1, 0, 3, 3, 'a', ' ', 'b', 0, 80}), reply::general_failure},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    const auto p = parse_request(r.in);
    EXPECT_EQ(p.st, status::error);
    EXPECT_EQ(p.error_reply, r.code);
    EXPECT_FALSE(p.error.empty());
  }
}

TEST(socks5_request, unsupported_command_parses) {
  for (std::uint8_t cmd : {command::bind, command::udp_associate, std::uint8_t{9}}) {
    const auto p = parse_request(bytes({5, cmd, 0, 1, 127, 0, 0, 1, 0, 53}));
    ASSERT_EQ(p.st, status::complete);
    EXPECT_EQ(p.cmd, cmd);
    EXPECT_EQ(p.dst.host, "127.0.0.1");
    EXPECT_EQ(p.dst.port, 53);
  }
}

TEST(socks5_reply, round_trips_server_to_client) {
  std::vector<address> bounds = {
      {address::kind::ipv4, "10.0.0.1", 1080},
      {address::kind::ipv6, "fe80::1", 2},
      {address::kind::domain, "proxy.example", 3128},
  };
  for (auto code : {reply::succeeded, reply::general_failure, reply::not_allowed, reply::network_unreachable,
                    reply::host_unreachable, reply::connection_refused, reply::ttl_expired,
                    reply::command_not_supported, reply::address_type_not_supported}) {
    EXPECT_STRNE(describe(code), "");
    for (const auto& b : bounds) {
      const std::string msg = make_reply(code, &b);
      expect_prefixes_incomplete(msg, parse_reply);
      const auto p = parse_reply(msg);
      EXPECT_EQ(p.code, code);
      EXPECT_EQ(p.bound.type, b.type);
      EXPECT_EQ(p.bound.host, b.host);
      EXPECT_EQ(p.bound.port, b.port);
    }
  }
  const std::string zero = make_reply(reply::succeeded);
  EXPECT_EQ(zero, bytes({5, 0, 0, 1, 0, 0, 0, 0, 0, 0}));
  const auto p = parse_reply(zero);
  EXPECT_EQ(p.bound.host, "0.0.0.0");
  EXPECT_EQ(p.bound.port, 0);
}

TEST(socks5_reply, malformed) {
  EXPECT_EQ(parse_reply(bytes({4, 0, 0, 1, 0, 0, 0, 0, 0, 0})).st, status::error);
  EXPECT_EQ(parse_reply(bytes({5, 0, 1, 1, 0, 0, 0, 0, 0, 0})).st, status::error);
  EXPECT_EQ(parse_reply(bytes({5, 0, 0, 9, 0, 0, 0, 0, 0, 0})).st, status::error);
  EXPECT_EQ(parse_reply(bytes({5, 0, 0, 3, 0, 0, 0})).st, status::error);
  // HTTP from a misconfigured exit.
  EXPECT_EQ(parse_reply("HTTP/1.1 400 Bad Request\r\n").st, status::error);
}

TEST(socks5_full_exchange, client_and_server_agree) {
  // Client greeting → server choice → client credentials → server status → client request → server reply.
  std::string wire = make_greeting(true);
  const auto g = parse_greeting(wire);
  ASSERT_EQ(g.st, status::complete);
  const auto choice = parse_method_choice(make_method_choice(method::userpass));
  ASSERT_EQ(choice.method, method::userpass);
  const auto up = parse_userpass(make_userpass("alice-country-de", "pw"));
  ASSERT_EQ(up.st, status::complete);
  EXPECT_EQ(up.user, "alice-country-de");
  EXPECT_TRUE(parse_userpass_status(make_userpass_status(true)).ok);
  // Pipelined: the request follows the credentials in one buffer.
  const std::string pipelined = make_userpass("u", "p") + make_connect("example.org", 80);
  const auto first = parse_userpass(pipelined);
  ASSERT_EQ(first.st, status::complete);
  const auto req = parse_request(std::string_view(pipelined).substr(first.consumed));
  ASSERT_EQ(req.st, status::complete);
  EXPECT_EQ(req.dst.host, "example.org");
  EXPECT_EQ(req.consumed, pipelined.size() - first.consumed);
}

}  // namespace
}  // namespace exitpool::proto::socks5
