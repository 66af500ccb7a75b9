#!/usr/bin/env bash
# Installs what the pop3-dovecot test harness needs at run time: Dovecot with its POP3
# server (Debian packages dovecot-core + dovecot-pop3d). Idempotent: does nothing when a
# dovecot binary and its pop3 / pop3-login executables are already present.
#
# Nothing else is needed at run time: the harness writes its own dovecot.conf into a temp
# dir and generates its certificates with rcgen (no openssl CLI), and it runs each instance
# on free high ports on 127.0.0.1 with its own base_dir. So a system Dovecot service (which
# the package may start on ports 110/995 with /etc/dovecot) would not interfere; when this
# script installs the package itself, it still stops that service so nothing listens
# needlessly. A Dovecot that was already installed is left alone.
set -euo pipefail

find_dovecot() {
    local p
    for p in "$(command -v dovecot 2>/dev/null || true)" /usr/sbin/dovecot /usr/local/sbin/dovecot /sbin/dovecot; do
        if [ -n "$p" ] && [ -x "$p" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

have_pop3() {
    local d
    for d in /usr/lib/dovecot /usr/libexec/dovecot /usr/local/libexec/dovecot; do
        if [ -x "$d/pop3" ] && [ -x "$d/pop3-login" ]; then
            return 0
        fi
    done
    return 1
}

# strace: pop3-cli's crash tests inject SIGKILL/ENOSPC/EIO at system calls with it.
if bin=$(find_dovecot) && have_pop3 && command -v strace >/dev/null 2>&1; then
    echo "dovecot-setup: already installed: $bin $("$bin" --version), $(strace -V | head -1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
install() {
    $SUDO apt-get install -y --no-install-recommends dovecot-core dovecot-pop3d strace
}
echo "dovecot-setup: installing dovecot-core dovecot-pop3d strace"
# Always refresh the index first: a stale one points at superseded .debs (404).
$SUDO apt-get update -q
if ! install; then
    echo "dovecot-setup: install failed; refreshing the package index and retrying" >&2
    sleep 2
    $SUDO apt-get update -q
    install
fi

# The package may have started the system service (often prevented by policy-rc.d in
# containers). Stop it; best effort, never fatal.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dovecot 2>/dev/null; then
    $SUDO systemctl stop dovecot || true
elif [ -x /etc/init.d/dovecot ] && /etc/init.d/dovecot status >/dev/null 2>&1; then
    $SUDO /etc/init.d/dovecot stop || true
fi

bin=$(find_dovecot) || { echo "dovecot-setup: dovecot still not found after install" >&2; exit 1; }
have_pop3 || { echo "dovecot-setup: dovecot pop3 executables not found after install" >&2; exit 1; }
command -v strace >/dev/null 2>&1 || { echo "dovecot-setup: strace not found after install" >&2; exit 1; }
echo "dovecot-setup: installed $bin $("$bin" --version)"
