#!/usr/bin/env bash
# A real single-node Slurm cluster for tracktui's Slurm tests (and for trying tracktui on).
#
# Installs Debian's slurm-wlm and munge when they are missing, writes slurm.conf and
# cgroup.conf into a state directory with this host's name, then starts munged, slurmctld
# and slurmd as root (no systemd). Idempotent: a cluster that already answers is left as it
# is. The node offers ONE CPU so that one job fills it (the tests need a full node), and
# finished jobs stay visible to squeue for an hour (no accounting database is needed).
#
#   tests/slurm/start_cluster.sh        start (or confirm) the cluster
#   export SLURM_CONF=/tmp/tracktui-slurm/slurm.conf   then sbatch, squeue, tracktui ...
#   tests/slurm/stop_cluster.sh         stop what this script started
#
# TRACKTUI_SLURM_DIR moves the state directory; TRACKTUI_SLURM_PORT the first of the two
# ports (default 16817, away from a real cluster's 6817 and 6818); TRACKTUI_SLURM_INSTALL=no
# fails instead of installing packages (what the tests use outside CI).
set -euo pipefail

STATE=${TRACKTUI_SLURM_DIR:-/tmp/tracktui-slurm}
PORT=${TRACKTUI_SLURM_PORT:-16817}
CONF=$STATE/slurm.conf
export SLURM_CONF=$CONF

say() { printf 'start_cluster: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (slurmd starts jobs as their users)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    [ "${TRACKTUI_SLURM_INSTALL:-yes}" != no ] || fail "slurm-wlm and munge are not installed"
    command -v apt-get >/dev/null || fail "slurm-wlm and munge are missing and apt-get is not here"
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq slurm-wlm munge >&2
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

cluster_up() {
    alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid" \
        && sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'
}

if cluster_up; then
    say "already up: export SLURM_CONF=$CONF"
    echo "export SLURM_CONF=$CONF"
    exit 0
fi

mkdir -p "$STATE/ctld" "$STATE/spool"
chmod 755 "$STATE"

# munge: one daemon for the whole box; start ours only when none answers.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 755 /run/munge
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged
    else
        munged --force
    fi
    touch "$STATE/munged.ours"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || fail "munged does not answer"
fi

HOST=$(hostname -s)
# Stale daemons of an earlier start (a half-up cluster) go before the new ones start.
for daemon in slurmd slurmctld; do
    if alive "$STATE/$daemon.pid"; then
        kill "$(cat "$STATE/$daemon.pid")" 2>/dev/null || true
        for _ in $(seq 50); do alive "$STATE/$daemon.pid" || break; sleep 0.1; done
    fi
done

cat >"$CONF" <<EOF
# Written by tracktui's tests/slurm/start_cluster.sh: a one-node cluster on $HOST.
ClusterName=tracktui
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No cgroups or systemd needed: processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
# Fast turnarounds for tests: a cancelled job is SIGKILLed 2 s after SIGTERM, a time
# limit is not stretched, finished jobs stay in squeue for an hour.
KillWait=2
OverTimeLimit=0
MinJobAge=3600
InactiveLimit=0
SchedulerParameters=sched_min_interval=0
NodeName=$HOST CPUs=1 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$STATE/cgroup.conf" <<EOF
# Written by tracktui's tests/slurm/start_cluster.sh. Not used by this configuration
# (proctrack/linuxproc, task/none); kept so a switch to cgroups starts from sane values.
CgroupPlugin=autodetect
ConstrainCores=no
ConstrainRAMSpace=no
EOF

slurmctld -c -f "$CONF"
slurmd -f "$CONF"
for _ in $(seq 100); do
    cluster_up && break
    sleep 0.1
done
if ! cluster_up; then
    say "the cluster did not come up; the end of its logs:"
    tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
    exit 1
fi
say "up: node $HOST (1 CPU), state in $STATE; stop it with tests/slurm/stop_cluster.sh"
echo "export SLURM_CONF=$CONF"
