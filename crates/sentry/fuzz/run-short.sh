#!/usr/bin/env bash
# Short fuzzing run of the Sentry's network stack, for CI: frames from the
# wire and netlink requests. Builds every target under cargo-fuzz and runs
# each for a bounded time.
#
# Exits non-zero if any target finds a crash, a panic, a hang or unbounded
# memory; the input that caused it is left under
# crates/sentry/fuzz/artifacts/<target>/ and `cargo fuzz run <target> <that
# file>` (with RUSTC_BOOTSTRAP=1) replays it.
#
# SENTRY_FUZZ_SECONDS sets the time per target (default 10).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${SENTRY_FUZZ_SECONDS:-10}
targets=(frames netlink)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Frames and requests of every kind the targets' stack expects (an
# ordinary build of this crate's example): ten seconds of mutation rarely
# finds a TCP SYN with a valid IPv4 checksum alone.
cargo run --quiet --example seeds -- seeds

# cargo-fuzz passes nightly-only -Z flags (sanitizer coverage); this
# machine has only the stable toolchain, which accepts them with this set.
export RUSTC_BOOTSTRAP=1
# No sanitizer: the Sentry and the harnesses forbid unsafe code, so
# AddressSanitizer would only slow the build and the runs; panics and
# overflow checks (debug assertions are on) are what find bugs here.
build_flags=(--sanitizer none)

cargo fuzz build "${build_flags[@]}"

failed=()
for target in "${targets[@]}"; do
  echo "fuzz: running $target for ${seconds}s"
  # Not under artifacts/$target/, where cargo-fuzz takes every file for a crash.
  log="artifacts/$target.log"
  mkdir -p "artifacts/$target" "corpus/$target"
  # New inputs go to the first directory, corpus/. -timeout: any single
  # input taking over 30 s is a hang (the frames harness itself gives the
  # stack 10 s to answer). -rss_limit_mb: the stack's own bounds (1536
  # sockets of 128 KiB, 512 queued frames of 64 KiB) come to about 230 MiB;
  # a process past 1 GiB has let an input grow it without bound.
  if ! cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=1024 >"$log" 2>&1; then
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
