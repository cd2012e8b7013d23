// Go net/http through an exitpool gateway: HTTP proxy (rotating, sticky) and SOCKS5. Standard
// library only, so it builds offline (Debian 12: apt install golang-go).
//
//	cd examples/go
//	EXITPOOL_GATEWAY=127.0.0.1:8080 EXITPOOL_USER=alice EXITPOOL_PASSWORD=secret go run . http://TARGET/
//
// TARGET should answer with the caller's address (e.g. https://api.ipify.org). Each line printed:
// LABEL exit=<X-Exitpool-Exit, or - where the client cannot see it> ip=<response body>.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

var (
	gateway  = env("EXITPOOL_GATEWAY", "127.0.0.1:8080")
	user     = env("EXITPOOL_USER", "user")
	password = env("EXITPOOL_PASSWORD", "x")
)

// client returns an http.Client that sends everything through the gateway. Options such as
// "session-ab12" or "country-us" ride in the proxy user name: USER-session-ab12.
// For "http" proxies Go sends Proxy-Authorization itself (absolute-form for http:// URLs, CONNECT
// for https://). For "socks5" Go passes the target's name to the gateway (no DNS lookup here).
func client(scheme string, options ...string) *http.Client {
	proxy := &url.URL{
		Scheme: scheme,
		User:   url.UserPassword(strings.Join(append([]string{user}, options...), "-"), password),
		Host:   gateway,
	}
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{Proxy: http.ProxyURL(proxy)},
	}
}

func show(label string, c *http.Client, target string) error {
	resp, err := c.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	// 407: bad credentials or option; 502/503/504: the gateway says why in X-Exitpool-Error.
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s (%s)", label, resp.Status, resp.Header.Get("X-Exitpool-Error"))
	}
	exit := resp.Header.Get("X-Exitpool-Exit")
	if exit == "" {
		exit = "-"
	}
	fmt.Printf("%s exit=%s ip=%s\n", label, exit, strings.TrimSpace(string(body)))
	return nil
}

func run(target string) error {
	session := os.Getenv("EXITPOOL_SESSION")
	if session == "" {
		b := make([]byte, 6)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		session = hex.EncodeToString(b)
	}

	// 1. No session: every request takes the next exit, also on a kept-alive connection.
	rotating := client("http")
	for i := 1; i <= 3; i++ {
		if err := show(fmt.Sprintf("rotate-%d", i), rotating, target); err != nil {
			return err
		}
	}
	// 2. A sticky session: the same exit for every request and connection with this id.
	sticky := client("http", "session-"+session)
	for i := 1; i <= 3; i++ {
		if err := show(fmt.Sprintf("session-%d", i), sticky, target); err != nil {
			return err
		}
	}
	// 3. SOCKS5 on the same port, same session: the same exit.
	return show("socks5", client("socks5", "session-"+session), target)
}

func main() {
	target := env("TARGET_URL", "")
	if len(os.Args) > 1 {
		target = os.Args[1]
	}
	if target == "" {
		fmt.Fprintf(os.Stderr, "usage: %s URL (or TARGET_URL=URL)\n", os.Args[0])
		os.Exit(2)
	}
	if err := run(target); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
