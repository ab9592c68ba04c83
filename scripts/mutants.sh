#!/usr/bin/env bash
# Mutation testing with cargo-mutants: breaks the code the security claims
# rest on, one change at a time, and checks that some test fails. Results
# and the reason for every surviving mutant: docs/MUTANTS.md.
#
#   bash scripts/mutants.sh           every mutant (about two hours on 2 cores)
#   bash scripts/mutants.sh --sample  CI's bounded sample: one 1/SHARDS slice of
#                                     each group, which slice chosen by the
#                                     commit count, so successive commits walk
#                                     through every mutant; expects the test
#                                     suite to have passed already
#
# On a clean checkout it mutates the working tree in place (each file is
# restored at once) to reuse the build; with uncommitted changes it works in
# a copy instead. Any mutant no test catches makes it fail.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked --quiet
# .cargo/mutants.toml runs the tests with nextest.
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked --quiet

# group name | packages whose tests judge it | files to mutate
groups=(
  "core|sealed-session|src/sealer.rs src/token.rs src/revocation/*.rs src/csrf.rs src/cookie.rs src/web/*.rs src/dbsc/*.rs src/keyring/schedule.rs src/keyring/watch.rs src/metrics.rs"
  "actix|sealed-session-actix|crates/sealed-session-actix/src/*.rs"
  "sqlite|sealed-session-sqlite,sealed-session-cli|crates/sealed-session-sqlite/src/*.rs"
  "redis|sealed-session-redis|crates/sealed-session-redis/src/*.rs"
  "postgres|sealed-session-postgres|crates/sealed-session-postgres/src/*.rs"
)

SHARDS=${MUTANTS_SHARDS:-192}
mode=${1:-full}
where=(--in-place)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "uncommitted changes: mutating a copy of the tree, not the tree itself"
  where=()
fi
status=0
for group in "${groups[@]}"; do
  IFS='|' read -r name packages files <<<"$group"
  args=(--workspace "${where[@]}" --test-package "$packages" -o "mutants.out-$name")
  for file in $files; do args+=(--file "$file"); done
  if [ "$mode" = "--sample" ]; then
    shard=$(( $(git rev-list --count HEAD) % SHARDS ))
    echo "== mutants, $name: shard $shard of $SHARDS"
    # Round-robin: every shard holds mutants of every file (the default
    # slices hand the last shards nothing when a group has fewer than
    # SHARDS × its slice).
    args+=(--baseline skip --shard "$shard/$SHARDS" --sharding round-robin)
  else
    echo "== mutants, $name: all"
  fi
  # Exit codes: 0 all caught, 2 some missed, 3 some timed out, 4 baseline
  # failed. A timeout is a suite that does not pass, so it counts as caught;
  # but cargo-mutants answers 3 when a run has both timeouts and missed
  # mutants, so the missed list, not the code, says whether any survived.
  code=0
  cargo mutants "${args[@]}" || code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then status=$code; fi
  missed="mutants.out-$name/mutants.out/missed.txt"
  if [ -s "$missed" ]; then
    cat "$missed"
    status=2
  fi
done
exit "$status"
