#!/usr/bin/env bash
# Install Debian's chromium for the visualiser's browser tests (tests/viz), which Playwright drives with
# executable_path=/usr/bin/chromium. Playwright's own browser download (`playwright install`) is never used.
#
# Run by the test command before pytest. Without apt-get or root it says so and leaves the choice to the
# tests: they skip with that message locally and fail under CI (CI=true).
set -euo pipefail

chromium="${HRM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
    echo "install-browser: $("$chromium" --version 2>/dev/null || echo "$chromium") is installed"
    exit 0
fi

give_up() {
    echo "install-browser: $1; the browser tests will skip (and fail under CI)." >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    exit 0
}

command -v apt-get >/dev/null 2>&1 || give_up "no apt-get here: install Chromium and set HRM_CHROMIUM=/path/to/chromium"
sudo=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
        give_up "not root and no password-less sudo: run 'apt-get install chromium' as root"
    fi
fi

echo "install-browser: installing Debian's chromium with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
[ -x "$chromium" ] || give_up "apt-get installed chromium but $chromium is missing"
echo "install-browser: $("$chromium" --version) installed"
