#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, from seed corpora made of real repository files.
#
#   bash fuzz/run.sh            # 60 s per target
#   bash fuzz/run.sh 600        # 10 minutes per target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). libFuzzer's sanitizer flags need a
# nightly compiler; on the stable toolchain RUSTC_BOOTSTRAP=1 enables them. A crash stops the
# run with libFuzzer's report and leaves the input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}

# Seeds: the plaintext of real config, key, index, snapshot, lock, deletion-record,
# verification-record and list files, pack headers, real and generated Neo4j dumps
# (tests/it/fuzz_seeds.rs). Built as `cargo test --release` builds it, so that it reuses that
# build: RUSTC_BOOTSTRAP is part of every crate's fingerprint, and set here it would rebuild
# the whole project.
RBK_FUZZ_SEEDS="$PWD/fuzz/corpus" cargo test --release --test it fuzz_seeds -- --quiet

export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in decode_files neo4j_dump chunker_roundtrip; do
  echo "== $target: ${SECONDS_PER_TARGET} s"
  log="fuzz/artifacts/$target.log"
  mkdir -p fuzz/artifacts
  status=0
  cargo fuzz run -O "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=1048576 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  # The summary, not libFuzzer's progress lines; the whole log on failure.
  if [ "$status" -ne 0 ]; then
    cat "$log"
    echo "fuzz target $target failed (status $status); the input is under fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
done
