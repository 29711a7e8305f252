#!/bin/sh
# Install the system packages the kit uses (bubblewrap for the grader's sandbox, redis-server
# for the Redis online store) when they are missing, if this machine allows it (root + apt).
# Otherwise say what to install. Prints nothing when everything is present.
# As root, also the unprivileged user that runs student code where bubblewrap cannot (the
# grader refuses reduced isolation as root without it).
if [ "$(id -u)" = 0 ] && ! id fslab-student >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1; then
    echo "Creating the sandbox user fslab-student"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fslab-student
fi
missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt/dpkg run (a second terminal, unattended-upgrades) instead of failing.
    lock="-o DPkg::Lock::Timeout=300"
    apt-get $lock update -qq && apt-get $lock install -y -qq $missing >/dev/null && exit 0
    echo "apt-get could not install:$missing" >&2
    exit 1
fi
echo "Please install these system packages (for example: sudo apt-get install$missing)."
echo "Without bubblewrap the grader falls back to reduced isolation; without redis-server"
echo "the Redis online store and its tests are unavailable."
