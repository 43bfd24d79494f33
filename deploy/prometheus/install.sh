#!/usr/bin/env bash
# Installs Debian's Prometheus server and promtool (package `prometheus`) for the tests.
#
# Idempotent: does nothing when promtool is already on PATH. Runs as root with no stdin (CI).
# The package's own service is never left running: a policy-rc.d that refuses service starts is
# put in place for the install (unless one already exists), and if the package started a
# daemon anyway it is stopped through the package's init script.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: promtool is missing and installing it needs root (apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
fi
cleanup() { if [ -n "$ours" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update </dev/null
apt-get install -y --no-install-recommends prometheus </dev/null

# Belt and braces: if a daemon came up anyway, stop it the package's way.
if [ -f /run/prometheus/prometheus.pid ] || [ -f /run/prometheus.pid ]; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl stop prometheus || true
        systemctl disable prometheus || true
    elif [ -x /etc/init.d/prometheus ]; then
        /etc/init.d/prometheus stop || true
    fi
fi

command -v promtool >/dev/null
command -v prometheus >/dev/null
promtool --version | head -n 1
