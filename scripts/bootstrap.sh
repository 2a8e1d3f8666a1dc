#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, idempotently:
#   uv (from PyPI), the workspace with every extra (.venv, from uv.lock), and redis-server
#   (Debian's package) when tests need it. llama-cpp-python builds from source once (~7 min);
#   uv's cache keeps the built wheel for later runs.
# Usage: scripts/bootstrap.sh [--with-redis]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v uv >/dev/null 2>&1; then
    say "installing uv"
    python3 -m pip install --quiet --disable-pip-version-check uv >&2
fi

if [ "${1:-}" = "--with-redis" ] && ! command -v redis-server >/dev/null 2>&1; then
    say "installing redis-server (Debian package)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >&2
fi

say "syncing the workspace (.venv)"
uv sync --all-packages --all-extras --locked --quiet >&2
