#!/usr/bin/env bash
# The sans-IO core must stay no_std: built without default features it may
# enable no `std` feature of any dependency, and it must build with each
# feature alone. Fails loudly (exit 1, with the offending lines) otherwise.
#
#   .ci/no-std-features.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "no-std-features: FAILED: $*" >&2; exit 1; }

# Normal dependencies and their features only: dev-dependencies (proptest,
# criterion) may use std, and build scripts / proc macros run on the host.
tree() { cargo tree -p pop3-proto -e normal,features --prefix none "$@"; }

# Self-test: the pattern must see std where it is on, or it proves nothing
# (the dev-dependency base64 is declared with its std feature).
cargo tree -p pop3-proto -e normal,dev,features --prefix none | grep -q '^base64 feature "std"' \
    || fail 'the pattern no longer matches cargo tree output (base64 feature "std" not seen)'

for features in "" "scram"; do
    args=(--no-default-features)
    [ -n "$features" ] && args+=(--features "$features")
    if found=$(tree "${args[@]}" | grep 'feature "std"'); then
        echo "$found" >&2
        fail "pop3-proto ${args[*]} enables a std feature of a dependency (above)"
    fi
    cargo build -q -p pop3-proto "${args[@]}" || fail "cargo build -p pop3-proto ${args[*]}"
done
cargo build -q -p pop3-proto --no-default-features --features std \
    || fail "cargo build -p pop3-proto --no-default-features --features std"

# thiserror's build script turns its std feature on for rustc < 1.81 (no
# core::error::Error), which cargo tree cannot see: the MSRV must be >= 1.81.
minor=$(sed -n 's/^rust-version = "1\.\([0-9]*\).*/\1/p' Cargo.toml)
[ -n "$minor" ] || fail "no rust-version in the workspace Cargo.toml"
[ "$minor" -ge 81 ] || fail "rust-version 1.$minor < 1.81: thiserror would enable std"
echo "no-std-features: ok (no std feature without default features; rust-version 1.$minor)"
