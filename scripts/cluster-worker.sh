#!/bin/sh
# Start a Dask worker that can grade `grade batch --scheduler` submissions, on a machine that
# shares nothing with the instructor's: its own copy of the kit, its own data, its own venv.
#
#   scripts/cluster-worker.sh tcp://scheduler:8786 [SLOTS]
#
# Run it from a checkout of the same kit version as the instructor's (git clone + checkout of
# the same commit, or an unpacked copy). It installs the kit into .venv (make install),
# generates the data with the same seed (grade setup; FSLAB_SEED, default 42) and starts one
# worker process with SLOTS grading slots (default 1; each slot needs ~1.5 GiB, see
# docs/scaling.md). The client refuses a worker whose grader, suites or data differ.
set -eu
scheduler="${1:?usage: scripts/cluster-worker.sh tcp://scheduler:8786 [SLOTS]}"
slots="${2:-1}"
kit="$(cd "$(dirname "$0")/.." && pwd)"
cd "$kit"
make install
.venv/bin/grade setup --seed "${FSLAB_SEED:-42}"
export FSLAB_KIT="$kit"
# One thread per grading slot: Dask then never gives this worker more submissions at once
# than it has warm sandbox factories. The nanny restarts the worker if it dies.
exec .venv/bin/dask worker "$scheduler" --nthreads "$slots" --nworkers 1 \
    --name "fslab-$(hostname)-$$" --local-directory "${TMPDIR:-/tmp}/fslab-dask"
