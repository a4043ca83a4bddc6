#!/usr/bin/env bash
# Stop the single-node cluster tests/slurm/start_cluster.sh started (its jobs die with it).
# munged is stopped only when that script started it.
set -euo pipefail

STATE=${TRACKTUI_SLURM_DIR:-/tmp/tracktui-slurm}

stop() {
    local pidfile=$1
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}

if [ -f "$STATE/slurm.conf" ]; then
    SLURM_CONF=$STATE/slurm.conf scancel --full --user="$(id -un)" 2>/dev/null || true
fi
stop "$STATE/slurmd.pid"
stop "$STATE/slurmctld.pid"
if [ -f "$STATE/munged.ours" ]; then
    stop /run/munge/munged.pid
    rm -f "$STATE/munged.ours"
fi
echo "stop_cluster: stopped (state left in $STATE)" >&2
