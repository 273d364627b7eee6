#!/usr/bin/env bash
# Checks (and, as root on Debian, installs) what the embedded default needs beside Python:
# Java 17+ to run the Kafka broker and Maven to fetch its jars from Maven Central; Prometheus
# (Debian's package: `promtool check rules` and a real server for the monitoring tests);
# Chromium (Debian's `chromium`: the headless check of `techne insights report --html`, and the
# console's and the preference centre's browser tests through Playwright);
# Caddy and Alertmanager's amtool (Debian's packages: the compose stack's TLS proxy config runs
# in front of a local gateway, and `amtool check-config` validates the alert routing).
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
optional=()
command -v promtool >/dev/null 2>&1 || optional+=(prometheus)
command -v chromium >/dev/null 2>&1 || optional+=(chromium)
command -v caddy >/dev/null 2>&1 || optional+=(caddy)
command -v amtool >/dev/null 2>&1 || optional+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]} — install Java 17+ and Maven" >&2
    exit 1
  fi
fi
if [ ${#optional[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${optional[*]}"
    { apt-get update -qq || true; } && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null
  else
    echo "note: ${optional[*]} not installed; the tests that need them (promtool/prometheus, chromium, caddy, amtool) are skipped" >&2
  fi
fi
major=$(java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]}')
if [ "${major:-0}" -lt 17 ]; then
  echo "Java 17+ is required (found ${major})" >&2
  exit 1
fi
