#!/usr/bin/env bash
# Fuzz smoke test: builds the cargo-fuzz targets of fuzz/ on the stable toolchain (no
# sanitizer) and runs each one briefly on a scratch copy of its seed corpus; fails on any
# crash, timeout or out-of-memory. Installs cargo-fuzz (`cargo install --locked`) when it
# is missing. Budget: about 4.5 minutes with 2 cores (install ~1 min, build ~1 min, 7 targets
# x FUZZ_SECONDS).
#
#   .ci/fuzz-smoke.sh                   # every target, 20 s each
#   FUZZ_SECONDS=60 .ci/fuzz-smoke.sh   # longer
#   .ci/fuzz-smoke.sh decoder_split     # some targets only
#
# Crash inputs are left in fuzz/artifacts/<target>/ (git-ignored); reproduce one with
#   cd fuzz && cargo fuzz run --sanitizer none <target> artifacts/<target>/crash-...
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
secs=${FUZZ_SECONDS:-20}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
echo "fuzz-smoke: $(cargo fuzz --version)"

cd "$fuzz"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz-smoke: no targets" >&2; exit 1; }

echo "fuzz-smoke: building ${targets[*]}"
cargo fuzz build --sanitizer none

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    seeds=()
    [ -d "$fuzz/corpus/$t" ] && seeds=("$fuzz/corpus/$t")
    log="$scratch/$t.log"
    echo "fuzz-smoke: $t for ${secs}s"
    # New inputs go to the scratch dir (first corpus argument), never into fuzz/corpus.
    if cargo fuzz run --sanitizer none "$t" "$scratch/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -dict="$fuzz/pop3.dict" -timeout=10 \
        -rss_limit_mb=1024 -malloc_limit_mb=256 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed 's/^/    /' || true
    else
        echo "fuzz-smoke: $t FAILED" >&2
        grep -E 'panicked at|^[a-z].*:$|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
        sed -n '/panicked at/,/stack backtrace/p' "$log" | head -40 >&2 || true
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-smoke: failing targets: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${secs}s without a crash"
