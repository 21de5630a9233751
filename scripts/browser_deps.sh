#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/browser/), from apt: never a browser build of its own
# (no `playwright install`). Run by `make test` before the tests.
# - /usr/bin/chromium already there: nothing to do;
# - root with apt-get (CI, a container): install it;
# - otherwise: say so; the browser tests then skip, printing the same reason.
# Under CI (CI set) a failed install is an error, so that CI cannot pass without the browser tests.
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser tests will be skipped: /usr/bin/chromium is missing and installing it needs root and apt-get" \
       "(on Debian/Ubuntu: sudo apt-get install chromium)"
  exit 0
fi
echo "installing Debian's chromium for the browser tests (apt-get) ..."
start=$(date +%s)
if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
     chromium fonts-liberation >/dev/null; then
  echo "chromium installed in $(( $(date +%s) - start )) s"
  exit 0
fi
echo "chromium could not be installed with apt-get: the browser tests will be skipped"
[ -z "${CI:-}" ]  # fail under CI
