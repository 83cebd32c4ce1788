#!/usr/bin/env bash
# Installs Debian's chromium for the browser test when it is missing and we are root.
# Playwright's own browser download does not work offline, so the test drives /usr/bin/chromium.
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "chromium missing and cannot be installed here (not root or no apt-get); the browser test will skip" >&2
  exit 0
fi
echo "installing Debian chromium for the browser test ..." >&2
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
  || echo "chromium install failed; the browser test will skip and say why" >&2
