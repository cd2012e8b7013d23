#pragma once
// Sockets born non-blocking, and Asio told so: the cheap way to open, connect and accept.
//
// Left to itself, Asio spends four system calls per proxied connection that a proxy opening
// one new tunnel per request cannot afford (issue 16): an ioctl(FIONBIO) on each socket's first
// asynchronous operation, a poll() before reading SO_ERROR after a connect, and an
// epoll_ctl(DEL) before closing an accepted socket (it must assume the descriptor may have
// been dup()ed). Here the sockets come from socket(2)/accept4(2) with SOCK_NONBLOCK, Asio's
// state records that they are non-blocking and never duplicated, and a connect waits for
// writability once and reads SO_ERROR.
//
// Callers: shard threads, on sockets of the shard's own io_context (one thread runs it).

#include <boost/asio.hpp>
#include <tuple>

#include "net/stream.hpp"

namespace exitpool::net {

// The calling thread's errno, as an error_code (after a raw system call failed).
error_code errno_code();

// Adopts `fd`, a non-blocking stream socket that nothing else refers to, into `sock` (closed
// before). On failure `fd` is closed.
error_code adopt_socket(tcp::socket& sock, const tcp& protocol, int fd);

// Opens `sock` (closed before) for `protocol`, non-blocking and close-on-exec.
error_code open_socket(tcp::socket& sock, const tcp& protocol);

// Connects an open socket (from open_socket): connect(2), and when that is in progress one
// wait for writability and SO_ERROR. Cancellation (the dial's deadline) ends the wait with
// operation_aborted; so does closing the socket.
awaitable<error_code> connect_socket(tcp::socket& sock, const tcp::endpoint& to);

// The next connection on `acceptor` (an open, listening acceptor of this shard, bound for
// `protocol`), non-blocking from accept4(2). Waits while none is pending. Connections the peer aborted before they were
// taken are skipped; other errors (out of descriptors, …) are returned for the caller to back
// off on.
awaitable<std::tuple<error_code, tcp::socket>> accept_socket(tcp::acceptor& acceptor, const tcp& protocol);

}  // namespace exitpool::net
