// tls_stream and tls_relay against an in-process TLS server on loopback: a blocking OpenSSL
// server on its own thread, with a key and a self-signed certificate (for "localhost" and
// 127.0.0.1) made at test time. The client side runs on an io_context in the test's thread.
#include "net/tls_stream.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/error.hpp>
#include <csignal>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include "net/relay.hpp"

namespace exitpool::net {
namespace {

// A key and a self-signed certificate valid for localhost and 127.0.0.1.
struct credentials {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  credentials() {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(cert, key, EVP_sha256());
  }
  ~credentials() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

const credentials& test_credentials() {
  static const credentials c;
  return c;
}

// What the server does with one accepted connection (blocking SSL, handshake done).
using server_script = std::function<void(SSL*, int fd)>;

// Listens on 127.0.0.1, accepts one connection, handshakes and runs the script.
class tls_server {
 public:
  explicit tls_server(server_script script) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx_, test_credentials().cert);
    SSL_CTX_use_PrivateKey(ctx_, test_credentials().key);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        return;
      }
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        script(ssl, fd);
      }
      SSL_free(ssl);
      ::close(fd);
    });
  }
  ~tls_server() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }
  std::uint16_t port() const { return port_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// Reads exactly n bytes on the server side (blocking); fewer if the connection ends.
std::string server_read(SSL* ssl, std::size_t n) {
  std::string out;
  char buf[16384];
  while (out.size() < n) {
    std::size_t got = 0;
    if (SSL_read_ex(ssl, buf, std::min(sizeof buf, n - out.size()), &got) != 1) {
      break;
    }
    out.append(buf, got);
  }
  return out;
}

bool server_write(SSL* ssl, std::string_view data) {
  std::size_t written = 0;
  return data.empty() || (SSL_write_ex(ssl, data.data(), data.size(), &written) == 1 && written == data.size());
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>((i * 131 + seed) % 251);
  }
  return s;
}

class TlsStream : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
  }
  void TearDown() override { SSL_CTX_free(client_ctx); }

  void trust_test_cert() { X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), test_credentials().cert); }

  // A tls_stream connected (TCP) to the server; verification set up as `host` says.
  std::unique_ptr<tls_stream> connect(const tls_server& server, const char* host, bool verify) {
    tcp::socket sock(ctx);
    sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    auto t = std::make_unique<tls_stream>(std::move(sock), client_ctx);
    EXPECT_TRUE(t->valid());
    SSL* ssl = t->native_handle();
    SSL_set_tlsext_host_name(ssl, host);
    if (verify) {
      SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
      SSL_set1_host(ssl, host);
    }
    return t;
  }

  // Runs a coroutine on the test's io_context to completion.
  template <typename T>
  T run(awaitable<T> a) {
    std::optional<T> out;
    asio::co_spawn(ctx, std::move(a), [&](std::exception_ptr e, T v) {
      if (e) {
        std::rethrow_exception(e);
      }
      out = std::move(v);
    });
    ctx.run();
    ctx.restart();
    return std::move(*out);
  }

  asio::io_context ctx;
  SSL_CTX* client_ctx = nullptr;
};

TEST_F(TlsStream, HandshakeWithTrustedCertThenEcho) {
  tls_server server([](SSL* ssl, int) {
    const std::string got = server_read(ssl, 4);
    server_write(ssl, "pong:" + got);
  });
  trust_test_cert();
  auto t = connect(server, "localhost", true);
  EXPECT_FALSE(run(t->handshake()));
  EXPECT_EQ(SSL_get_verify_result(t->native_handle()), X509_V_OK);
  auto [wec, wn] = run(t->write_all(asio::buffer(std::string_view("ping"))));
  EXPECT_FALSE(wec);
  EXPECT_EQ(wn, 4u);
  char buf[64];
  auto [rec, rn] = run(t->read_some(asio::buffer(buf)));
  EXPECT_FALSE(rec);
  EXPECT_EQ(std::string(buf, rn), "pong:ping");
}

TEST_F(TlsStream, UntrustedCertFailsVerification) {
  tls_server server([](SSL*, int) {});
  auto t = connect(server, "localhost", true);  // the self-signed certificate is not trusted
  const error_code ec = run(t->handshake());
  EXPECT_TRUE(ec);
  EXPECT_EQ(ec.category(), asio::error::get_ssl_category());
  EXPECT_EQ(SSL_get_verify_result(t->native_handle()), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
}

TEST_F(TlsStream, HostnameMismatchFailsVerification) {
  tls_server server([](SSL*, int) {});
  trust_test_cert();
  auto t = connect(server, "other.test", true);
  EXPECT_TRUE(run(t->handshake()));
  EXPECT_EQ(SSL_get_verify_result(t->native_handle()), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(TlsStream, NoVerificationAcceptsAnyCert) {
  tls_server server([](SSL*, int) {});
  auto t = connect(server, "other.test", false);
  EXPECT_FALSE(run(t->handshake()));
}

awaitable<std::tuple<std::string, error_code>> read_to_end(tls_stream& t) {
  std::string out;
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await t.read_some(asio::buffer(buf));
    out.append(buf, n);
    if (ec) {
      co_return std::tuple{out, ec};
    }
  }
}

TEST_F(TlsStream, PeerCloseNotifyReadsAsEof) {
  tls_server server([](SSL* ssl, int) {
    server_write(ssl, "bye");
    SSL_shutdown(ssl);
  });
  auto t = connect(server, "localhost", false);
  ASSERT_FALSE(run(t->handshake()));
  auto [data, ec] = run(read_to_end(*t));
  EXPECT_EQ(data, "bye");
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(TlsStream, PeerCloseWithoutNotifyReadsAsTruncated) {
  tls_server server([](SSL* ssl, int fd) {
    server_write(ssl, "bye");
    ::shutdown(fd, SHUT_RDWR);  // TCP FIN, no close_notify
  });
  auto t = connect(server, "localhost", false);
  ASSERT_FALSE(run(t->handshake()));
  auto [data, ec] = run(read_to_end(*t));
  EXPECT_EQ(data, "bye");
  EXPECT_EQ(ec, asio::ssl::error::stream_truncated);
}

// 1 MiB each way at once over one SSL: a write and a read in flight together.
awaitable<error_code> write_then_close(tls_stream& t, std::string data) {
  auto [ec, n] = co_await t.write_all(asio::buffer(data));
  if (ec) {
    co_return ec;
  }
  co_return co_await t.shutdown();
}

TEST_F(TlsStream, OneMebibyteBothWaysAtOnce) {
  constexpr std::size_t size = 1 << 20;
  // The server echoes as it reads; it answers close_notify with its own.
  tls_server server([](SSL* ssl, int) {
    char buf[16384];
    for (;;) {
      std::size_t got = 0;
      if (SSL_read_ex(ssl, buf, sizeof buf, &got) != 1) {
        break;
      }
      if (!server_write(ssl, std::string_view(buf, got))) {
        return;
      }
    }
    SSL_shutdown(ssl);
  });
  auto t = connect(server, "localhost", false);
  ASSERT_FALSE(run(t->handshake()));
  const std::string sent = pattern(size, 7);
  std::optional<error_code> wrote;
  std::optional<std::tuple<std::string, error_code>> echoed;
  asio::co_spawn(ctx, write_then_close(*t, sent), [&](std::exception_ptr, error_code ec) { wrote = ec; });
  asio::co_spawn(ctx, read_to_end(*t),
                 [&](std::exception_ptr, std::tuple<std::string, error_code> r) { echoed = std::move(r); });
  ctx.run();
  ASSERT_TRUE(wrote && echoed);
  EXPECT_FALSE(*wrote);
  EXPECT_EQ(std::get<1>(*echoed), asio::error::eof);
  EXPECT_EQ(std::get<0>(*echoed).size(), size);
  EXPECT_TRUE(std::get<0>(*echoed) == sent);
}

awaitable<error_code> write_small_pieces(tls_stream& t, std::string data, std::size_t piece) {
  for (std::size_t off = 0; off < data.size(); off += piece) {
    auto [ec, n] = co_await t.write_all(asio::buffer(data.data() + off, std::min(piece, data.size() - off)));
    if (ec) {
      co_return ec;
    }
  }
  co_return co_await t.shutdown();
}

TEST_F(TlsStream, ManySmallWrites) {
  const std::string sent = pattern(70000, 3);
  std::promise<std::string> received;
  auto got = received.get_future();
  tls_server server([&received](SSL* ssl, int) {
    std::string all = server_read(ssl, 1 << 30);  // to close_notify
    received.set_value(std::move(all));
  });
  auto t = connect(server, "localhost", false);
  ASSERT_FALSE(run(t->handshake()));
  EXPECT_FALSE(run(write_small_pieces(*t, sent, 7)));
  EXPECT_TRUE(got.get() == sent);
}

TEST_F(TlsStream, ClosedSocketEndsOperations) {
  tls_server server([](SSL*, int) {});
  auto t = connect(server, "localhost", false);
  ASSERT_FALSE(run(t->handshake()));
  t->socket().close();
  char c;
  auto [ec, n] = run(t->read_some(asio::buffer(&c, 1)));
  EXPECT_EQ(ec, asio::error::bad_descriptor);
}

// ---- tls_relay: a plain client on one side, the TLS server on the other ----

class TlsRelay : public TlsStream {
 protected:
  // Returns the far end of the client's connection (blocking, for the test).
  tcp::socket start(const tls_server& server, std::string to_upstream = {}) {
    auto t = connect(server, "localhost", false);
    EXPECT_FALSE(run(t->handshake()));
    upstream = stream(std::move(t));
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket far(ctx);  // used with blocking calls only, from the test's thread
    far.connect(acceptor.local_endpoint());
    tcp::socket near(ctx);
    acceptor.accept(near);
    client = stream(std::move(near));
    relay = std::make_unique<tls_relay>(client, upstream, act);
    relay->start(std::move(to_upstream), {}, std::make_shared<int>(0),
                 [this](const relay_result& r) { result.set_value(r); });
    runner = std::thread([this] { ctx.run(); });
    return far;
  }
  void TearDown() override {
    if (runner.joinable()) {
      runner.join();
    }
    TlsStream::TearDown();
  }

  stream client;
  stream upstream;  // over TLS
  activity act;
  std::unique_ptr<tls_relay> relay;
  std::promise<relay_result> result;  // set by the relay's `done`
  std::thread runner;                 // runs ctx while the test drives the far ends
};

TEST_F(TlsRelay, EchoesBothWaysAndPassesCloseNotifyAsFin) {
  constexpr std::size_t size = 3 << 20;
  // Echoes until the relay's close_notify, then sends a tail and its own close_notify.
  tls_server server([](SSL* ssl, int) {
    char buf[16384];
    std::size_t got = 0;
    while (SSL_read_ex(ssl, buf, sizeof buf, &got) == 1) {
      if (!server_write(ssl, std::string_view(buf, got))) {
        return;
      }
    }
    server_write(ssl, "tail");
    SSL_shutdown(ssl);
  });
  tcp::socket far = start(server, "head:");
  const std::string sent = pattern(size, 11);
  std::thread writer([&] {
    asio::write(far, asio::buffer(sent));
    far.shutdown(tcp::socket::shutdown_send);
  });
  std::string back;
  error_code ec;
  char buf[65536];
  for (;;) {
    const std::size_t n = far.read_some(asio::buffer(buf), ec);
    back.append(buf, n);
    if (ec) {
      break;
    }
  }
  writer.join();
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(back.size(), 5 + size + 4);
  EXPECT_TRUE(back == "head:" + sent + "tail");
  auto r = result.get_future().get();
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.bytes_up, 5 + size);
  EXPECT_EQ(r.bytes_down, 5 + size + 4);
}

// A burst larger than one read arrives while the tunnel is idle: every byte decrypted into
// OpenSSL's buffers must reach the client although the socket has nothing more to say.
TEST_F(TlsRelay, IdleTunnelDeliversABurstWithoutMoreInput) {
  std::promise<void> hold;
  auto release = hold.get_future();
  const std::string burst = pattern(200000, 5);
  tls_server server([&](SSL* ssl, int) {
    server_read(ssl, 2);  // the client's "go"
    server_write(ssl, burst);
    release.wait();  // keep the connection open, silent
    SSL_shutdown(ssl);
    server_read(ssl, 1 << 30);  // to the relay's close_notify (the client's FIN)
  });
  tcp::socket far = start(server);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // idle
  asio::write(far, asio::buffer(std::string_view("go")));
  std::string got(burst.size(), '\0');
  asio::read(far, asio::buffer(got));
  EXPECT_TRUE(got == burst);
  hold.set_value();
  far.shutdown(tcp::socket::shutdown_send);
  char c;
  error_code ec;
  far.read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_FALSE(result.get_future().get().error);
}

}  // namespace
}  // namespace exitpool::net
