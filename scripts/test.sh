#!/usr/bin/env bash
# The whole test suite: the README's test command and what CI runs.
# Installs what it needs; starts nothing that outlives it.
set -euo pipefail
cd "$(dirname "$0")/.."

# libsodium, for the independent check of the test vectors.
if ! python3 -c 'import nacl.bindings' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pynacl
fi

cargo test --workspace --all-features --locked
python3 tests/vectors/verify_libsodium.py
cargo bench --workspace --no-run --locked --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
