#!/usr/bin/env bash
# Makes Debian's Chromium (and a CJK font, for the console's Chinese) ready for the console's
# browser tests and benchmark. Idempotent; used by `make test` and `make bench`. Playwright
# drives this Chromium: downloading Playwright's own browsers is not needed.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
