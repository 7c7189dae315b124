#!/usr/bin/env bash
# Installs Debian's chromium package when `chromium` is not on PATH. The
# dashboard's browser test (internal/dashboard) drives it headless from Go
# with chromedp; it fails, rather than skips, without it. Needs root (or sudo)
# and a Debian/Ubuntu package mirror; does nothing when chromium is present.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "chromium is missing and this is not root: run 'apt-get install -y chromium' as root" >&2
		exit 1
	fi
	sudo="sudo"
fi
echo "==> installing Debian's chromium package (first time only)"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
command -v chromium
