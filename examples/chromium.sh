#!/usr/bin/env bash
# Headless Chromium through exitpool's sticky ports (--port-map): Chromium's SOCKS5 cannot send a user
# name, so the session comes from the port. Start the gateway with, for example,
#
#   exitpool serve --pool pool.txt --port-map 10001-10100 --port-map 10201-10300:country=us
#
# and every port of 10001-10100 is its own sticky session; 10201-10300 also only use country=us exits.
# Then load a page through one port, again through the same port (same exit), and through another:
#
#   EXITPOOL_HOST=127.0.0.1 examples/chromium.sh http://TARGET/ 10001 10001 10002 [-- CHROMIUM_FLAGS...]
#
# TARGET should answer with the caller's address (e.g. https://api.ipify.org). Each line printed:
# N-port-PORT exit=- ip=<the page's text>. CHROMIUM_PROXY_SCHEME=http uses the HTTP proxy on the same
# port instead of SOCKS5; flags after -- go to Chromium as they are. Debian 12: apt install chromium.
# Each page is a fresh Chromium with a fresh profile: nothing but the port ties two loads together.
set -euo pipefail

host=${EXITPOOL_HOST:-127.0.0.1}
scheme=${CHROMIUM_PROXY_SCHEME:-socks5}
url=${1:-}
if [[ -z "$url" || $# -lt 2 || "$2" == "--" ]]; then
  echo "usage: $0 URL PORT [PORT...] [-- CHROMIUM_FLAGS...]" >&2
  exit 2
fi
shift
ports=()
while [[ $# -gt 0 && "$1" != "--" ]]; do
  ports+=("$1")
  shift
done
[[ $# -gt 0 ]] && shift # the --
extra=("$@")
chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome) || {
  echo "$0: chromium not found (apt install chromium)" >&2
  exit 2
}

sandbox=()
[[ $(id -u) -eq 0 ]] && sandbox=(--no-sandbox) # Chromium refuses to run as root with its sandbox

n=0
for port in "${ports[@]}"; do
  n=$((n + 1))
  profile=$(mktemp -d)
  # --proxy-bypass-list=<-loopback>: send 127.0.0.1/localhost through the proxy too (Chromium bypasses
  #   them by default); harmless for other targets.
  # --disable-background-networking etc.: no update checks or other requests of Chromium's own through
  #   your exits.
  dom=$(timeout 60 "$chromium" --headless "${sandbox[@]}" --user-data-dir="$profile" \
    --proxy-server="$scheme://$host:$port" --proxy-bypass-list='<-loopback>' \
    --no-first-run --no-default-browser-check --disable-gpu --disable-extensions \
    --disable-background-networking --disable-component-update --disable-sync --disable-default-apps \
    --disable-domain-reliability --no-pings --metrics-recording-only \
    "${extra[@]}" --dump-dom "$url" 2>"$profile/chromium.log") || {
    echo "$0: chromium failed on port $port:" >&2
    tail -n 20 "$profile/chromium.log" >&2
    rm -rf "$profile"
    exit 1
  }
  rm -rf "$profile"
  # The page's text: the DOM without its tags.
  text=$(printf '%s' "$dom" | sed -e 's/<[^>]*>//g' | tr -d ' \r\n')
  echo "$n-port-$port exit=- ip=$text"
done
