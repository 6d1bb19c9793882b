#!/usr/bin/env bash
# Install the offline back-translation engine: Apertium with the English<->Spanish pair.
# Idempotent: does nothing when `apertium` and the eng-spa / spa-eng modes are present.
# Needs root (or sudo) and access to the Debian/Ubuntu package archive.
set -euo pipefail

have_pair() {
    command -v apertium >/dev/null 2>&1 || return 1
    # `apertium -l` lists the installed modes, one per line (indented); no early-closing pipe
    local modes
    modes="$(apertium -l 2>/dev/null || true)"
    printf '%s\n' "$modes" | tr -d ' \t' | grep -qx 'eng-spa' || return 1
    printf '%s\n' "$modes" | tr -d ' \t' | grep -qx 'spa-eng' || return 1
}

if have_pair; then
    echo "setup-apertium: apertium with eng-spa/spa-eng already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup-apertium: need root (or sudo) to apt-get install apertium apertium-eng-spa" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends apertium apertium-eng-spa

if have_pair; then
    echo "setup-apertium: installed: $(echo 'The flight was late.' | apertium -u eng-spa)"
else
    echo "setup-apertium: apertium installed but the eng-spa/spa-eng modes are missing" >&2
    exit 1
fi
