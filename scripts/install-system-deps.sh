#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those that are missing, so that
# `make test` / `make demo` work on a fresh Debian machine. Idempotent and quiet when all is there.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

have_cmd python3.11 || need+=(python3.11 python3.11-venv python3.11-dev)
have_cmd gcc || need+=(build-essential)
have_cmd espeak-ng || need+=(espeak-ng)          # offline TTS and simulated caller speech
have_cmd sox || need+=(sox)                      # audio checks in tests
have_cmd chromium || need+=(chromium)            # dashboard browser tests (Playwright drives it)
have_pkg libsndfile1 || need+=(libsndfile1)           # call recordings (soundfile; its wheel bundles one where it can)
have_pkg fonts-dejavu-core || need+=(fonts-dejavu-core)   # Hebrew glyphs in Chromium and matplotlib
{ [ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
