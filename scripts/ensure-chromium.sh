#!/usr/bin/env bash
# The browser test drives Debian's chromium (downloaded browsers do not work here).
# Install it when we can (root + apt); otherwise the browser test skips with a reason.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "ensure-chromium: could not install chromium; the browser test will skip"
else
  echo "ensure-chromium: chromium missing and not root; the browser test will skip"
fi
