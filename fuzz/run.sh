#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 30) on the stable toolchain,
# without a sanitizer (cargo fuzz's --sanitizer none works on stable; for
# AddressSanitizer run with RUSTC_BOOTSTRAP=1 and drop --sanitizer none).
# Seeds each corpus from tests/vectors/v1.json, v2.json and dbsc_proofs.json. Exits non-zero on a crash.
set -euo pipefail
seconds=${1:-30}
cd "$(dirname "$0")"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet

# Seed corpora: the tokens of the test vectors, and a keyring file.
mkdir -p corpus/open_arbitrary corpus/keyring_parse corpus/dbsc_proof
python3 - <<'PY'
import json, hashlib, pathlib
for version in (1, 2):
    vectors = json.loads(pathlib.Path(f"../tests/vectors/v{version}.json").read_text())
    for v in vectors["valid"] + vectors["invalid"]:
        token = v["token"].encode()
        pathlib.Path("corpus/open_arbitrary", hashlib.sha1(token).hexdigest()).write_bytes(token)
keys = "".join(f'[[key]]\nid = {k["id"]}\nstate = "{k["state"]}"\nsecret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"\n\n' for k in vectors["keys"])
pathlib.Path("corpus/keyring_parse/vectors.toml").write_text(keys)
for v in json.loads(pathlib.Path("../tests/vectors/dbsc_proofs.json").read_text())["vectors"]:
    proof = v["proof"].encode()
    pathlib.Path("corpus/dbsc_proof", hashlib.sha1(proof).hexdigest()).write_bytes(proof)
pathlib.Path("corpus/keyring_parse/env").write_text("1:primary:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,2:active:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE")
# Secrets where they do not belong, for the oracle that errors never repeat one.
secret = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"
for name, text in {
    "misplaced-field": f'[[key]]\nid = 1\nstate = "primary"\nsecret = "{secret}"\n{secret} = 1\n',
    "misplaced-state": f'[[key]]\nid = 1\nstate = "{secret}"\nsecret = "{secret}"\n',
    "misspelt": f'[[key]]\nid = 1\nstate = "primary"\nsecrte = "{secret}"\n',
    "env-short": "1:primary:" + secret[:-1],
}.items():
    pathlib.Path("corpus/keyring_parse", name).write_text(text)
PY

targets=$(cargo fuzz list)
cargo fuzz build --sanitizer none
mkdir -p logs
for target in $targets; do
  echo "== $target: ${seconds}s"
  if ! cargo fuzz run --sanitizer none "$target" -- -max_total_time="$seconds" -print_final_stats=1 \
      > "logs/$target.log" 2>&1; then
    tail -n 40 "logs/$target.log"
    echo "fuzz target $target found a crash; the input is under fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)|cov: ' "logs/$target.log" | tail -n 4
done
echo "fuzz: all targets ran ${seconds}s without a crash"
