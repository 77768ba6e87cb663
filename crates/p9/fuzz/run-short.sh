#!/usr/bin/env bash
# Short fuzzing run of the 9P decoder and server, for CI: builds every
# target under cargo-fuzz and runs each for a bounded time.
#
# Exits non-zero if any target finds a crash, a panic or a hang; the input
# that caused it is left under crates/p9/fuzz/artifacts/<target>/ and
# `cargo fuzz run <target> <that file>` (with RUSTC_BOOTSTRAP=1) replays it.
#
# P9_FUZZ_SECONDS sets the time per target (default 10).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${P9_FUZZ_SECONDS:-10}
targets=(decode_t decode_r server_frames)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# A frame of every message type to start from (an ordinary build
# of p9's example): ten seconds of mutation rarely finds them alone.
cargo run --quiet --manifest-path ../../../Cargo.toml -p p9 --example fuzz_seeds -- seeds

# cargo-fuzz passes nightly-only -Z flags (sanitizer coverage); this
# machine has only the stable toolchain, which accepts them with this set.
export RUSTC_BOOTSTRAP=1
# No sanitizer: p9 and the harnesses forbid unsafe code, so AddressSanitizer
# would only slow the build and the runs; panics and overflow checks
# (debug assertions are on) are what find bugs here.
build_flags=(--sanitizer none)

cargo fuzz build "${build_flags[@]}"

failed=()
for target in "${targets[@]}"; do
  echo "fuzz: running $target for ${seconds}s"
  # Not under artifacts/$target/, where cargo-fuzz takes every file for a crash.
  log="artifacts/$target.log"
  mkdir -p "artifacts/$target" "corpus/$target"
  # New inputs go to the first directory, corpus/; -timeout: any single
  # input taking over 10 s counts as a hang (a crash).
  if ! cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 >"$log" 2>&1; then
    grep -E -A3 'panicked at|ERROR: libFuzzer|Reproduce with' "$log" || tail -n 40 "$log"
    failed+=("$target")
  else
    grep -E '^Done' "$log" || true
  fi
done

echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}: inputs are in $(pwd)/artifacts/" >&2
  exit 1
fi
