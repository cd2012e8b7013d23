#!/usr/bin/env bash
# curl through an exitpool gateway: rotation, a sticky session, a country, a CONNECT tunnel, SOCKS5.
#
#   EXITPOOL_GATEWAY=127.0.0.1:8080 EXITPOOL_USER=alice EXITPOOL_PASSWORD=secret \
#     examples/curl.sh http://TARGET/
#
# TARGET should answer with the caller's address (e.g. https://api.ipify.org), so each line shows
# the address the target saw. Each line: LABEL exit=<X-Exitpool-Exit header, or - where curl cannot
# see it> ip=<response body>.
# Without --users on the gateway any user name works and the password is ignored.
set -euo pipefail

gateway=${EXITPOOL_GATEWAY:-127.0.0.1:8080}
user=${EXITPOOL_USER:-user}
password=${EXITPOOL_PASSWORD:-x}
session=${EXITPOOL_SESSION:-curl$$}   # letters and digits, no "-": the same id keeps its exit
country=${EXITPOOL_COUNTRY:-}         # e.g. us: only exits tagged country=us
url=${1:-${TARGET_URL:?usage: $0 URL (or TARGET_URL=URL)}}

body=$(mktemp)
trap 'rm -f "$body"' EXIT

# One request: the X-Exitpool-Exit header goes to stdout through -w, the body to a file through -o.
# --noproxy '': ignore http_proxy/no_proxy from the environment; -f: fail on 4xx/5xx (a 407 or 503
# from the gateway); %header{...} needs curl 7.84 or later (Debian 12 has 7.88).
# -U (--proxy-user) sends the credentials to the proxy, HTTP or SOCKS5 alike.
show() {
  local label=$1 exit_id
  shift
  exit_id=$(curl -sS -f --noproxy '' --max-time 20 -w '%header{x-exitpool-exit}' -o "$body" "$@" "$url")
  echo "$label exit=${exit_id:--} ip=$(tr -d '\r\n' <"$body")"
}

# 1. HTTP proxy: every request leaves through the next exit (the gateway rotates).
for i in 1 2 3; do
  show "rotate-$i" -x "http://$gateway" -U "$user:$password"
done

# 2. A sticky session: options ride in the user name (USER-session-ID[-sesstime-MIN]); the same id
#    keeps its exit for every connection and every protocol, for sesstime minutes (default 10).
for i in 1 2 3; do
  show "session-$i" -x "http://$gateway" -U "$user-session-$session:$password"
done

# 3. Targeting: USER-country-CC (also -city-, -type-); a 503 names the filter when nothing matches.
if [[ -n "$country" ]]; then
  show "country-$country" -x "http://$gateway" -U "$user-country-$country:$password"
fi

# 4. A CONNECT tunnel (what curl does for https:// URLs; -p forces it for http:// too). The exit header
#    is on the proxy's CONNECT answer, which curl -w does not show: exit=-.
show "connect" -p -x "http://$gateway" -U "$user-session-$session:$password"

# 5. SOCKS5 on the same port; socks5h:// lets the gateway resolve the target name (no DNS leak from
#    this machine). The same session as the HTTP requests above: the same exit.
show "socks5h" -x "socks5h://$gateway" -U "$user-session-$session:$password"
