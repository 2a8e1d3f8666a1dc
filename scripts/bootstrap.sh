#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, idempotently:
#   uv (from PyPI), the workspace with every extra (.venv, from uv.lock), and redis-server and
#   tmux (Debian's packages) when tests need them. llama-cpp-python builds from source once
#   (~7 min on 2 idle cores), with its compile steps and a heartbeat shown; uv's cache keeps the
#   built wheel, so later runs print one line.
# Usage: scripts/bootstrap.sh [--with-redis]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v uv >/dev/null 2>&1; then
    say "installing uv"
    python3 -m pip install --quiet --disable-pip-version-check uv >&2
fi

# tmux: the interactive CLI test drives lexigram-llm chat in a real terminal.
if [ "${1:-}" = "--with-redis" ] \
    && ! { command -v redis-server && command -v tmux; } >/dev/null 2>&1; then
    say "installing redis-server and tmux (Debian packages)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server tmux >&2
fi

# uv shows a build backend's output only with -v (as DEBUG lines): keep uv's own lines and
# ninja's "[step/steps]" lines, drop the rest (and the per-package "+ name" lines). When nothing
# is printed for HEARTBEAT seconds, say that the sync is still running and for how long.
HEARTBEAT=5
LOG="${TMPDIR:-/tmp}/lexigram-uv-sync.log"

elapsed() { printf '%dm%02ds' $(((SECONDS - $1) / 60)) $(((SECONDS - $1) % 60)); }

show_sync_progress() {
    local started=$SECONDS building="" shown="" line status
    while true; do
        if IFS= read -r -t "$HEARTBEAT" line; then
            printf '%s\n' "$line" >>"$LOG"
            case "$line" in
                DEBUG\ \[[0-9]*/[0-9]*\]*)
                    line=${line#DEBUG }
                    if [[ $line =~ ([A-Za-z0-9_+-]+\.(c|cc|cpp))\.o ]]; then
                        what="compiling ${BASH_REMATCH[1]}"
                    else
                        what="linking"
                    fi
                    printf '    %s %s (%s)\n' "${line%% *}" "$what" "$(elapsed "$started")" >&2 ;;
                DEBUG*|TRACE*|" + "*|" - "*|" ~ "*|Resolved*|Audited*|Checked*|Using*|"") ;;
                *"Building llama-cpp-python"*)
                    building=1 shown=1
                    say "compiling llama-cpp-python (llama.cpp, C++): once per machine, about" \
                        "7 minutes on 2 idle cores; uv's cache keeps the wheel for later runs"
                    printf '    %s\n' "${line#"${line%%[! ]*}"}" >&2 ;;
                *"Built llama-cpp-python"*)
                    building=""
                    printf '    %s (%s)\n' "${line#"${line%%[! ]*}"}" "$(elapsed "$started")" >&2 ;;
                *)
                    shown=1
                    printf '    %s\n' "${line#"${line%%[! ]*}"}" >&2 ;;
            esac
        else
            status=$?
            if [ "$status" -le 128 ]; then break; fi  # end of uv's output
            shown=1
            if [ -n "$building" ]; then
                printf '    ... still compiling llama-cpp-python (%s)\n' "$(elapsed "$started")" >&2
            else
                printf '    ... still syncing (%s)\n' "$(elapsed "$started")" >&2
            fi
        fi
    done
    if [ -n "$shown" ]; then say "workspace ready ($(elapsed "$started"))"; fi
}

say "syncing the workspace (.venv)"
: >"$LOG"
# First from uv's cache alone: the package index answers a revalidation of the
# llama-cpp-python sdist as "modified" once its cached response is stale (within hours), and uv
# then builds a new wheel (~7 minutes) although the one it built from the same file is cached.
# Offline, uv takes what it has; on a fresh machine (or when the lock needs something not yet
# cached) that fails at once and the normal sync below runs.
if uv sync --all-packages --all-extras --locked --offline --quiet >>"$LOG" 2>&1; then
    say "workspace ready (from uv's cache)"
    exit 0
fi
set +e
uv sync --all-packages --all-extras --locked -v 2>&1 | show_sync_progress
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    say "uv sync failed (exit $status); its full output is in $LOG"
    exit "$status"
fi
