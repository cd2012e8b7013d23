"""Choosing exits: rotation, policies, sticky sessions, filters from the username, retries, failures."""
import collections

import pytest

from helpers import (EXIT_IPS, Conn, basic, closed_port, curl, via_connect, via_http, via_socks)

DE = {"dante", "microsocks"}
RESIDENTIAL = {"tinyproxy", "microsocks"}


def test_rotation_spreads_over_all_exits(gw_all, lab):
    seen = collections.Counter()
    for i in range(40):
        hop = via_http(gw_all.port, lab.origin.url(f"/r{i}"))
        assert hop.status == 200, hop.resp
        assert hop.consistent(), (hop.exit_id, hop.origin_saw)
        seen[hop.exit_id] += 1
    assert set(seen) == set(EXIT_IPS), seen


def test_rotation_through_connect_and_socks(gw_all, lab):
    connect_ids, socks_ips = set(), set()
    for _ in range(20):
        hop = via_connect(gw_all.port, lab.origin.hostport)
        assert hop.status == 200 and hop.consistent(), (hop.exit_id, hop.origin_saw)
        connect_ids.add(hop.exit_id)
        hop = via_socks(gw_all.port, "127.0.0.1", lab.origin.port)
        assert hop.status == 200
        socks_ips.add(hop.origin_saw)
    assert len(connect_ids) >= 5 and len(socks_ips) >= 4, (connect_ids, socks_ips)


@pytest.mark.parametrize("policy", ["random", "least-inflight", "fastest"])
def test_other_policies_serve(start_gateway, lab, policy):
    gw = start_gateway(lab.pool("squid", "dante", "d1", "d2"), "--policy", policy)
    seen = set()
    for _ in range(20):
        hop = via_http(gw.port, lab.origin.url())
        assert hop.status == 200 and hop.consistent()
        seen.add(hop.exit_id)
    if policy == "random":
        assert len(seen) >= 2  # 20 draws over 4 exits


def test_round_robin_with_one_thread_is_even(start_gateway, lab):
    gw = start_gateway(lab.pool("d1", "d2", "squid"), "--policy", "round-robin", threads=1)
    seen = collections.Counter(via_http(gw.port, lab.origin.url()).exit_id for _ in range(12))
    assert seen == {"d1": 4, "d2": 4, "squid": 4}


# ------------------------------------------------------------------------------------------ sticky

def test_sticky_session_keeps_one_exit_http(gw_all, lab):
    hops = [via_http(gw_all.port, lab.origin.url(), user="alice-session-s1") for _ in range(20)]
    assert all(h.status == 200 and h.consistent() for h in hops)
    assert len({h.exit_id for h in hops}) == 1, [h.exit_id for h in hops]


def test_sticky_session_with_curl(gw_all, lab):
    bodies = {curl("-x", gw_all.proxy(), "-U", "alice-session-curl1:x", lab.origin.url()).text for _ in range(10)}
    assert len(bodies) == 1 and bodies.pop().strip() in EXIT_IPS.values()


def test_sticky_session_same_exit_across_protocols(gw_all, lab):
    """HTTP absolute-form, CONNECT and SOCKS5 with one session id leave through one exit, from either shard."""
    user = "alice-session-s1"
    http = {via_http(gw_all.port, lab.origin.url(), user=user).exit_id for _ in range(7)}
    conn = {via_connect(gw_all.port, lab.origin.hostport, user=user).exit_id for _ in range(7)}
    socks = {via_socks(gw_all.port, "127.0.0.1", lab.origin.port, user=user).origin_saw for _ in range(7)}
    assert len(http) == 1 and http == conn, (http, conn)
    assert socks == {EXIT_IPS[next(iter(http))]}, (http, socks)
    c1 = curl("-x", gw_all.proxy("socks5h", user=user), lab.origin.url()).text.strip()
    assert c1 == EXIT_IPS[next(iter(http))]


def test_sticky_session_in_password_field(gw_all, lab):
    hops = [via_http(gw_all.port, lab.origin.url(), user="alice", password="x_session-pw1") for _ in range(15)]
    assert all(h.status == 200 for h in hops)
    assert len({h.exit_id for h in hops}) == 1
    socks = {via_socks(gw_all.port, "127.0.0.1", lab.origin.port, user="alice", password="x_session-pw1").origin_saw
             for _ in range(5)}
    assert socks == {EXIT_IPS[hops[0].exit_id]}


def test_sticky_session_survives_a_new_gateway_with_the_same_pool(start_gateway, lab):
    """Rendezvous hashing: the same pool gives the same exit for a session, in any process, on any shard."""
    a = start_gateway(lab.pool(), threads=2)
    b = start_gateway(lab.pool(), threads=1)
    for sid in ("x1", "x2", "x3"):
        ea = {via_http(a.port, lab.origin.url(), user=f"alice-session-{sid}").exit_id for _ in range(3)}
        eb = {via_http(b.port, lab.origin.url(), user=f"alice-session-{sid}").exit_id for _ in range(3)}
        assert len(ea) == 1 and ea == eb, (sid, ea, eb)


def test_different_sessions_spread_over_exits(gw_all, lab):
    exits = {via_http(gw_all.port, lab.origin.url(), user=f"alice-session-spread{i}").exit_id for i in range(24)}
    assert len(exits) >= 3, exits


@pytest.mark.parametrize("user", ["alice-sessid-a1", "alice-session-a1-sesstime-5", "alice-session-a1-sessTime-5",
                                  "alice-session-a1-sessionduration-5", "alice-zone-blue-session-a1",
                                  "alice-SESSION-a1"])
def test_session_aliases(gw_all, lab, user):
    exits = {via_http(gw_all.port, lab.origin.url(), user=user).exit_id for _ in range(6)}
    assert len(exits) == 1 and None not in exits, (user, exits)


def test_sticky_session_with_country(gw_all, lab):
    exits = {via_http(gw_all.port, lab.origin.url(), user="alice-country-de-session-de1").exit_id for _ in range(8)}
    assert len(exits) == 1 and exits <= DE


# ----------------------------------------------------------------------------------------- filters

@pytest.mark.parametrize("user,password", [
    ("alice-country-de", "x"), ("alice-cc-de", "x"), ("alice-region-de", "x"), ("alice-COUNTRY-de", "x"),
    ("alice", "x_country-de"), ("alice-zone-z1-country-de", "x"),
])
def test_country_filter(gw_all, lab, user, password):
    hops = [via_http(gw_all.port, lab.origin.url(), user=user, password=password) for _ in range(12)]
    assert all(h.status == 200 and h.consistent() for h in hops), [(h.status, h.exit_id) for h in hops]
    assert {h.exit_id for h in hops} == DE


def test_country_filter_socks5_and_connect(gw_all, lab):
    for _ in range(6):
        assert via_socks(gw_all.port, "127.0.0.1", lab.origin.port, user="alice-country-de").origin_saw in \
            {"127.0.0.13", "127.0.0.14"}
        assert via_connect(gw_all.port, lab.origin.hostport, user="alice-country-de").exit_id in DE


def test_type_filter(gw_all, lab):
    exits = {via_http(gw_all.port, lab.origin.url(), user="alice-type-residential").exit_id for _ in range(10)}
    assert exits == RESIDENTIAL


def test_country_and_type_filter(gw_all, lab):
    exits = {via_http(gw_all.port, lab.origin.url(), user="alice-country-us-type-isp").exit_id for _ in range(6)}
    assert exits == {"d1"}


def test_unknown_option_is_407_naming_it(gw_all, lab):
    hop = via_http(gw_all.port, lab.origin.url(), user="alice-colour-red")
    assert hop.status == 407
    assert "colour" in (hop.resp.header("X-Exitpool-Error") or ""), hop.resp.headers
    hop = via_connect(gw_all.port, lab.origin.hostport, user="alice-colour-red")
    assert hop.status == 407 and "colour" in (hop.resp.header("X-Exitpool-Error") or "")
    hop = via_socks(gw_all.port, "127.0.0.1", lab.origin.port, user="alice-colour-red")
    assert hop.status == 407  # RFC 1929 status != 0


def test_unknown_option_in_password_is_407(gw_all, lab):
    """A password shaped PASS_key-value carries options (src/proto/user_params.hpp); unknown keys are errors."""
    hop = via_http(gw_all.port, lab.origin.url(), user="alice", password="x_colour-red")
    assert hop.status == 407, hop.resp.headers
    assert "colour" in (hop.resp.header("X-Exitpool-Error") or "")
    # a password with '_' that is not shaped like options is just a password
    assert via_http(gw_all.port, lab.origin.url(), user="alice", password="my_secret").status == 200


def test_no_exit_for_country_is_503(gw_all, lab):
    hop = via_http(gw_all.port, lab.origin.url(), user="alice-country-xx")
    assert hop.status == 503
    assert "country=xx" in (hop.resp.header("X-Exitpool-Error") or ""), hop.resp.headers
    assert hop.resp.header("Proxy-Status"), hop.resp.headers
    assert hop.resp.body  # a short body saying why
    hop = via_connect(gw_all.port, lab.origin.hostport, user="alice-country-xx")
    assert hop.status == 503 and hop.resp.header("Proxy-Status")
    hop = via_socks(gw_all.port, "127.0.0.1", lab.origin.port, user="alice-country-xx")
    assert hop.status > 1000  # a SOCKS5 failure reply
    assert via_http(gw_all.port, lab.origin.url()).status == 200


# ------------------------------------------------------------------------------- retries, failures

def dead_http(name="dead", country="us"):
    return f"http://127.0.0.1:{closed_port()} id={name} country={country}"


def dead_socks(name="dead-socks", country="us"):
    return f"socks5://127.0.0.1:{closed_port()} id={name} country={country}"


@pytest.mark.parametrize("live", ["squid", "dante", "d1"])
def test_dead_upstream_is_skipped_by_retry(start_gateway, lab, live):
    gw = start_gateway([dead_http(), dead_socks(), lab.line(live)], "--retries", "2", "--policy", "round-robin",
                       "--dial-timeout", "3")
    for i in range(12):
        hop = via_http(gw.port, lab.origin.url(f"/{i}"))
        assert hop.status == 200, (i, hop.resp.headers if hop.resp else None)
        assert hop.exit_id == live and hop.consistent()
        hop = via_connect(gw.port, lab.origin.hostport)
        assert hop.status == 200 and hop.exit_id == live
        hop = via_socks(gw.port, "127.0.0.1", lab.origin.port)
        assert hop.status == 200 and hop.origin_saw == EXIT_IPS[live]


def test_retry_keeps_filters(start_gateway, lab):
    gw = start_gateway([dead_http("dead-de", "de"), lab.line("dante"), lab.line("d1")], "--retries", "2")
    for _ in range(8):
        hop = via_http(gw.port, lab.origin.url(), user="alice-country-de")
        assert hop.status == 200 and hop.exit_id == "dante"


def test_sticky_session_moves_off_a_dead_exit(start_gateway, lab):
    gw = start_gateway([dead_http("dead1"), dead_http("dead2"), lab.line("d1"), lab.line("d2")], "--retries", "2")
    for sid in range(6):
        exits = {via_http(gw.port, lab.origin.url(), user=f"alice-session-m{sid}").exit_id for _ in range(4)}
        assert len(exits) == 1 and exits <= {"d1", "d2"}, exits


def test_all_exits_dead_is_502(start_gateway, lab):
    gw = start_gateway([dead_http("dead1"), dead_socks("dead2")], "--retries", "2", "--dial-timeout", "3")
    hop = via_http(gw.port, lab.origin.url())
    assert hop.status == 502, hop.resp
    err = hop.resp.header("X-Exitpool-Error") or ""
    assert err, hop.resp.headers
    assert hop.resp.header("Proxy-Status"), hop.resp.headers
    hop = via_connect(gw.port, lab.origin.hostport)
    assert hop.status == 502 and hop.resp.header("Proxy-Status")
    hop = via_socks(gw.port, "127.0.0.1", lab.origin.port)
    assert hop.status > 1000


def test_upstream_refusing_connect_is_retried(start_gateway, lab):
    """An upstream that is up but answers CONNECT with an error (bad credentials) counts as a dial failure."""
    bad_tp = lab.line("tp-auth").replace("tpuser:tppass@", "tpuser:wrong@").replace("id=tp-auth", "id=tp-bad")
    bad_ms = lab.line("ms-auth").replace("msuser:mspass@", "msuser:wrong@").replace("id=ms-auth", "id=ms-bad")
    gw = start_gateway([bad_tp, bad_ms, lab.line("d2")], "--retries", "2")
    for _ in range(6):
        hop = via_connect(gw.port, lab.origin.hostport)
        assert hop.status == 200 and hop.exit_id == "d2"
        hop = via_socks(gw.port, "127.0.0.1", lab.origin.port)
        assert hop.status == 200 and hop.origin_saw == "127.0.0.22"


def test_bad_upstream_credentials_alone_is_502(start_gateway, lab):
    bad_ms = lab.line("ms-auth").replace("msuser:mspass@", "msuser:wrong@")
    gw = start_gateway([bad_ms])
    hop = via_connect(gw.port, lab.origin.hostport)
    assert hop.status == 502 and hop.resp.header("X-Exitpool-Error")


# ------------------------------------------------------------------------------------ TLS upstream

def test_tls_upstream_verified_with_ca_file(start_gateway, lab):
    line = lab.line("squid-tls").replace(" tls_verify=false", "").replace("id=squid-tls", "id=tls-verified")
    gw = start_gateway([line], "--ca-file", str(lab.ca_file))
    hop = via_http(gw.port, lab.origin.url())
    assert hop.status == 200 and hop.exit_id == "tls-verified" and hop.origin_saw == "127.0.0.11"
    hop = via_connect(gw.port, lab.origin.hostport)
    assert hop.status == 200 and hop.origin_saw == "127.0.0.11"


def test_tls_upstream_untrusted_certificate_fails(start_gateway, lab):
    line = lab.line("squid-tls").replace(" tls_verify=false", "").replace("id=squid-tls", "id=tls-untrusted")
    gw = start_gateway([line])  # no --ca-file: the test CA is not trusted
    hop = via_http(gw.port, lab.origin.url())
    assert hop.status == 502, hop.resp
    assert hop.resp.header("X-Exitpool-Error")
