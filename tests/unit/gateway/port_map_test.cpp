#include "gateway/port_map.hpp"

#include <gtest/gtest.h>

namespace exitpool::gateway {
namespace {

TEST(PortMap, Parses) {
  struct tc {
    const char* text;
    std::uint16_t first, last;
    const char* country;
    const char* type;
    std::optional<int> minutes;
  };
  for (const auto& c : {
           tc{"10001-10100:country=us", 10001, 10100, "us", "", std::nullopt},
           tc{"10001-10100:cc=US,type=isp,sesstime=30", 10001, 10100, "us", "isp", 30},
           tc{"9000", 9000, 9000, "", "", std::nullopt},
           tc{"9000:", 9000, 9000, "", "", std::nullopt},
           tc{"9000-9000:region=de", 9000, 9000, "de", "", std::nullopt},
       }) {
    SCOPED_TRACE(c.text);
    auto r = parse_port_map(c.text);
    ASSERT_TRUE(r.map) << r.error;
    EXPECT_EQ(r.map->first, c.first);
    EXPECT_EQ(r.map->last, c.last);
    EXPECT_EQ(r.map->options.country, c.country);
    EXPECT_EQ(r.map->options.type, c.type);
    EXPECT_EQ(r.map->options.session_minutes, c.minutes);
    EXPECT_EQ(r.map->options.user, "");
    EXPECT_EQ(r.map->options.session, "");
  }
  auto busy = parse_port_map("7000-7001:sessbusy=move");
  ASSERT_TRUE(busy.map);
  EXPECT_EQ(busy.map->options.session_move_when_busy, true);
}

TEST(PortMap, Refuses) {
  for (const char* text :
       {"", "x", "0-10", "10-0", "9-70000", "100-99", "10001-10100:country", "10001-10100:=us",
        "10001-10100:country=", "10001-10100:colour=red", "10001-10100:session=abc", "10001-10100:sesstime=0",
        "10001-10100:country=us-east", "10001-10100:sessbusy=maybe", "10001-10100,country=us"}) {
    SCOPED_TRACE(text);
    auto r = parse_port_map(text);
    EXPECT_FALSE(r.map);
    EXPECT_NE(r.error.find("--port-map"), std::string::npos) << r.error;
  }
}

TEST(PortMap, EachPortIsItsOwnSession) {
  auto m = parse_port_map("10001-10003:country=us").map;
  ASSERT_TRUE(m);
  auto a = port_session(*m, 10001);
  auto b = port_session(*m, 10002);
  EXPECT_EQ(a.session, "port:10001");
  EXPECT_EQ(b.session, "port:10002");
  EXPECT_EQ(a.country, "us");
}

TEST(PortMap, ChecksOverlapsReservedPortsAndTotal) {
  auto m = [](const char* t) { return *parse_port_map(t).map; };
  EXPECT_EQ(check_port_maps({m("10001-10100"), m("10101-10200")}, {8080, 9090}), "");
  EXPECT_NE(check_port_maps({m("10001-10100"), m("10100-10200")}, {}).find("share ports"), std::string::npos);
  EXPECT_NE(check_port_maps({m("8000-8100")}, {8080}).find("port 8080"), std::string::npos);
  EXPECT_NE(check_port_maps({m("1000-20000")}, {}).find("at most"), std::string::npos);
}

}  // namespace
}  // namespace exitpool::gateway
