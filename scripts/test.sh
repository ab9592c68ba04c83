#!/usr/bin/env bash
# The whole test suite: the README's test command and what CI runs.
# Installs what it needs; starts nothing that outlives it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive for real. Services are not started by the
# install (policy-rc.d); the tests start their own (PostgreSQL through
# initdb, as the postgres user, in a temporary directory) and stop them.
# Everything the tests start lives under one temporary directory of this
# run, so that anything left running can be found at the end (see below).
TMPDIR=$(mktemp -d)
chmod 755 "$TMPDIR" # PostgreSQL runs as the postgres user, in a directory below
export TMPDIR
policy_rc=""
cleanup() {
  if [ -n "$policy_rc" ]; then rm -f /usr/sbin/policy-rc.d; fi
  pkill -KILL -f -- "$TMPDIR" 2>/dev/null || true
  rm -rf -- "$TMPDIR"
}
trap cleanup EXIT

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
command -v openssl >/dev/null || need+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v faketime >/dev/null || need+=(faketime)
# pkill and pgrep (servers' cleanup, the check below), a C++ compiler
# (libFuzzer, for the fuzz targets), git (the mutation sample).
command -v pkill >/dev/null || need+=(procps)
command -v c++ >/dev/null || need+=(g++)
command -v git >/dev/null || need+=(git)
# libsodium's Python binding, for the independent check of the test
# vectors: Debian's package (its python3 refuses pip installs); another
# Python (pyenv) gets it from pip below.
python3 -c 'import nacl.bindings' 2>/dev/null || need+=(python3-nacl)
if [ ${#need[@]} -gt 0 ]; then
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_rc=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! python3 -c 'import nacl.bindings' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pynacl
fi

# Includes the chaos test (crates/sealed-session-demo/tests/chaos.rs),
# CHAOS_SECONDS long (default 20; SECURITY.md records a 5-minute run).
cargo test --workspace --all-features --locked
python3 tests/vectors/verify_libsodium.py
# The benchmarks build (in the test profile, on the test build's
# dependencies: a release build of everything took six minutes here).
cargo test --workspace --all-features --benches --no-run --locked --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
# Every published crate packages (metadata, included files); the others are publish = false.
cargo package --workspace --exclude sealed-session-demo --exclude sealed-session-examples \
  --exclude sealed-session-testkit --no-verify --locked --quiet --allow-dirty

# Licenses, duplicate versions and sources, offline. Installing cargo-deny
# from source takes about six minutes here; a machine that has it skips that.
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --quiet
# cargo-deny reads the metadata of every platform's dependencies.
cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources

# Fuzzing smoke run: every target for FUZZ_SECONDS (default 10) on stable.
bash fuzz/run.sh "${FUZZ_SECONDS:-10}"

# Mutation testing, a bounded sample: one slice of the mutants of the
# modules the security claims rest on (scripts/mutants.sh; docs/MUTANTS.md
# has the full run). Any mutant no test catches fails the suite.
bash scripts/mutants.sh --sample

# Nothing the tests started may outlive them. Redis, Sentinel and
# PostgreSQL servers, browsers and demo processes name a path in this run's
# temporary directory on their command line, so a leftover is found here.
# (A PostgreSQL server is reaped within a second of its test process's exit.)
sleep 2
if pgrep -f -- "$TMPDIR" >/dev/null; then
  echo "processes the tests started are still running:" >&2
  ps -o pid,args -p "$(pgrep -d, -f -- "$TMPDIR")" >&2
  exit 1
fi
