#!/usr/bin/env bash
# local_slurm.sh -- a real single-node SLURM cluster on localhost, for tests and trials.
#
# Usage (as root; Debian 12: slurm 22.05, munge 0.5):
#   scripts/local_slurm.sh start    # configure, start munged/slurmctld/slurmd, wait for the node (default)
#   scripts/local_slurm.sh status   # the daemons (by recorded PID) and sinfo
#   scripts/local_slurm.sh stop     # cancel this cluster's jobs, stop ONLY the daemons it started, by PID
#
# Exit codes: 0 ok; 1 error; 2 usage; 3 this machine cannot host the cluster now (not
# root, commands missing, slurm.conf or a port taken by someone else): the message says why.
#
# The packages (slurmctld slurmd slurm-client munge) are installed by
# scripts/install_test_services.sh (run by `make test`); this script installs nothing.
#
# The cluster's files live in one run directory: its own munged's key and socket (the
# system's munged is neither needed nor touched), slurmctld's state, slurmd's spool, the
# logs (log/) and the PID files. Only slurm.conf is outside it, at /etc/slurm/slurm.conf,
# where every SLURM command looks first: Snakemake's job-step executor runs `srun` inside
# a job with all SLURM_* variables removed, SLURM_CONF included, so a config elsewhere is
# not found there. The script writes that file only when it is absent or was written by
# this script for a cluster that no longer runs, and removes it on stop; so one such
# cluster runs per machine at a time (a second start says which one runs).
#
# What it sets up: munged, slurmctld and slurmd, all as root, each in the foreground of a
# background job in its own session (the recorded PID is the daemon's); one node "localhost", one
# partition (Default=YES). No accounting database: sacct and sacctmgr do not work,
# squeue and scontrol do, so the Snakemake SLURM executor must poll with
# `--slurm-status-command squeue`, and MinJobAge (how long a finished job stays visible
# to squeue) must be at least 3x its `--slurm-init-seconds-before-status-checks`. No
# cgroups: processes are tracked by parent PID, memory is requested but not scheduled
# or enforced.
#
# Environment knobs (all optional):
#   LOCAL_SLURM_RUN_DIR       the run directory                           (default /run/local-slurm)
#   LOCAL_SLURM_CONF          slurm.conf to write (default /etc/slurm/slurm.conf; elsewhere,
#                             clients need SLURM_CONF and Snakemake's job steps fail)
#   LOCAL_SLURM_PORT          slurmctld's port; slurmd listens on PORT+1    (default 6817)
#   LOCAL_SLURM_PARTITION     name of the one partition                   (default debug)
#   LOCAL_SLURM_CPUS          CPUs the node offers; more than the machine has oversubscribes
#                             it (more jobs at once, each slower)         (default: nproc)
#   LOCAL_SLURM_MIN_JOB_AGE   MinJobAge, seconds                          (default 300, SLURM's)
#   LOCAL_SLURM_KILL_WAIT     KillWait: seconds from SIGTERM to SIGKILL at a time limit (default 30)
#   LOCAL_SLURM_MEM_FRAC      percent of the machine's memory the node offers (default 80)
#   LOCAL_SLURM_TIMEOUT       seconds to wait for the node to become idle (default 60)
set -euo pipefail

RUN_DIR="${LOCAL_SLURM_RUN_DIR:-/run/local-slurm}"
CONF="${LOCAL_SLURM_CONF:-/etc/slurm/slurm.conf}"
PORT="${LOCAL_SLURM_PORT:-6817}"
PARTITION="${LOCAL_SLURM_PARTITION:-debug}"
CPUS="${LOCAL_SLURM_CPUS:-$(nproc)}"
MIN_JOB_AGE="${LOCAL_SLURM_MIN_JOB_AGE:-300}"
KILL_WAIT="${LOCAL_SLURM_KILL_WAIT:-30}"
MEM_FRAC="${LOCAL_SLURM_MEM_FRAC:-80}"
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-60}"
NODE=localhost
DAEMONS=(munged slurmctld slurmd)  # start order; stopped in reverse

MARKER="# Written by scripts/local_slurm.sh for the cluster in RUN_DIR="
export SLURM_CONF="$CONF"  # the client commands below (sinfo, squeue, scontrol, scancel) use ours

log() { printf '[local-slurm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
busy() { log "CANNOT START: $*"; exit 3; }

mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
MUNGE_DIR="$RUN_DIR/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
read_pid() { if [ -f "$RUN_DIR/$1.pid" ]; then cat "$RUN_DIR/$1.pid"; fi; }
running() { pid_alive "$(read_pid "$1")"; }
munge_ok() {  # a credential made and checked through our munged's socket
    munge --socket="$MUNGE_SOCKET" -n </dev/null 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }  # nothing listens on TCP port $1

conf_owner() {  # the RUN_DIR that wrote $CONF; empty when there is none; '?' when not this script
    [ -f "$CONF" ] || return 0
    local line
    line="$(head -1 "$CONF")"
    case "$line" in
        "$MARKER"*) echo "${line#"$MARKER"}" ;;
        *) echo "?" ;;
    esac
}

check_machine() {  # exit 3 unless this machine can host the cluster now
    local c missing=() owner
    [ "$(id -u)" = 0 ] || busy "not root: cannot start slurmctld/slurmd/munged"
    for c in munged munge unmunge slurmctld slurmd sbatch srun sinfo squeue scontrol scancel; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    [ "${#missing[@]}" = 0 ] \
        || busy "missing commands: ${missing[*]} (scripts/install_test_services.sh installs them, as root)"
    owner="$(conf_owner)"
    case "$owner" in
        ""|"$RUN_DIR") ;;
        "?") busy "$CONF exists and was not written by this script (set LOCAL_SLURM_CONF, or move it away)" ;;
        *) if pid_alive "$(cat "$owner/slurmctld.pid" 2>/dev/null)"; then
               busy "another local cluster runs ($CONF, LOCAL_SLURM_RUN_DIR=$owner)"
           fi ;;
    esac
    port_free "$PORT" && port_free "$((PORT + 1))" \
        || busy "port $PORT or $((PORT + 1)) is in use (set LOCAL_SLURM_PORT)"
}

write_config() {
    local mem overrides=""
    mem="$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
    mem=$(( mem * MEM_FRAC / 100 ))
    # more CPUs than the hardware has: slurmd must take the configured node as it is
    [ "$CPUS" -gt "$(nproc)" ] && overrides="SlurmdParameters=config_overrides"

    mkdir -p "$MUNGE_DIR" "$RUN_DIR/state" "$RUN_DIR/spool" "$RUN_DIR/log"
    chmod 0700 "$MUNGE_DIR"
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then  # a key of this cluster's own
        dd if=/dev/urandom bs=1024 count=1 of="$MUNGE_DIR/munge.key" status=none
        chmod 0400 "$MUNGE_DIR/munge.key"
    fi

    log "writing $CONF (CPUs=$CPUS RealMemory=${mem}MB ports $PORT,$((PORT + 1)))"
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF" <<EOF
$MARKER$RUN_DIR
# A single-node test cluster on localhost; removed by 'scripts/local_slurm.sh stop'.
ClusterName=local
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
$overrides
StateSaveLocation=$RUN_DIR/state
SlurmdSpoolDir=$RUN_DIR/spool
SlurmctldPidFile=$RUN_DIR/state/slurmctld.pid
SlurmdPidFile=$RUN_DIR/spool/slurmd.pid
SlurmctldLogFile=$RUN_DIR/log/slurmctld.log
SlurmdLogFile=$RUN_DIR/log/slurmd.log
# no accounting database: sacct/sacctmgr do not work, squeue/scontrol do
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# a finished job stays visible to 'squeue --states=all' this long (seconds); the
# Snakemake SLURM executor needs MinJobAge >= 3x --slurm-init-seconds-before-status-checks
MinJobAge=$MIN_JOB_AGE
# at a job's time limit (checked every 30 s): SIGTERM, then SIGKILL after KillWait seconds
KillWait=$KILL_WAIT
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemon() {  # NAME COMMAND...: COMMAND stays in the foreground, so $! is the daemon's PID
    local name="$1"; shift
    # own session: a Ctrl-C or hangup meant for the caller does not reach the daemons, so
    # `stop` still finds slurmctld to cancel the jobs (setsid execs, it does not fork here)
    setsid "$@" >"$RUN_DIR/log/$name.out" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/$name.pid"
    log "started $name (PID $!)"
}

wait_for() {  # SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s while the started daemons live
    local secs="$1" what="$2" i name; shift 2
    for i in $(seq $((secs * 5))); do
        "$@" && return 0
        for name in "${DAEMONS[@]}"; do
            if [ -f "$RUN_DIR/$name.pid" ] && ! running "$name"; then
                die "$name exited: $(tail -5 "$RUN_DIR/log/$name.out" 2>/dev/null)"
            fi
        done
        sleep 0.2
    done
    die "no $what after ${secs}s; see $RUN_DIR/log/"
}

node_up() {
    local state
    state="$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -1)"
    case "$state" in
        idle|mixed|allocated) return 0 ;;
        down*|drain*|fail*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    return 1
}

start() {
    local t0 name
    t0=$(date +%s.%N)
    if running munged && running slurmctld && running slurmd; then
        log "already running: $(pids)"
        return
    fi
    for name in "${DAEMONS[@]}"; do
        running "$name" && die "$name (PID $(read_pid "$name")) runs without the others: '$0 stop' first"
    done
    check_machine
    write_config

    start_daemon munged munged --foreground --force --socket="$MUNGE_SOCKET" \
        --key-file="$MUNGE_DIR/munge.key" --pid-file="$MUNGE_DIR/munged.pid" \
        --seed-file="$MUNGE_DIR/munged.seed" --log-file="$RUN_DIR/log/munged.log"
    wait_for 20 "munge credentials" munge_ok
    # -D: foreground; -c: slurmctld starts without job state
    start_daemon slurmctld slurmctld -D -c -f "$CONF"
    start_daemon slurmd slurmd -D -f "$CONF" -N "$NODE"
    wait_for "$TIMEOUT" "idle node '$NODE'" node_up

    log "cluster ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s: $(pids)"
    sinfo >&2
    [ "$CONF" = /etc/slurm/slurm.conf ] || log "clients: export SLURM_CONF=$CONF"
    log "snakemake: --executor slurm --slurm-status-command squeue (no sacct here)"
}

stop() {
    local i name pid
    if running slurmctld && [ "$(conf_owner)" = "$RUN_DIR" ]; then
        # this cluster's jobs (the config is ours): cancel them and wait until they are
        # gone, so no job step outlives the daemons
        scancel --quiet --partition="$PARTITION" 2>/dev/null || true
        for i in $(seq 100); do
            [ -z "$(squeue -h -o '%i' 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    for (( i = ${#DAEMONS[@]} - 1; i >= 0; i-- )); do
        name="${DAEMONS[$i]}"
        pid="$(read_pid "$name")"
        if pid_alive "$pid"; then
            kill "$pid"
            for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.2; done
            if pid_alive "$pid"; then log "$name ($pid) ignored SIGTERM: SIGKILL"; kill -9 "$pid"; fi
            log "stopped $name (PID $pid)"
        fi
        rm -f "$RUN_DIR/$name.pid"
    done
    if [ "$(conf_owner)" = "$RUN_DIR" ]; then rm -f "$CONF"; fi
}

pids() {
    local name out=""
    for name in "${DAEMONS[@]}"; do out+="$name=$(read_pid "$name") "; done
    echo "${out% } (in $RUN_DIR)"
}

status() {
    local name rc=0
    for name in "${DAEMONS[@]}"; do
        if running "$name"; then echo "$name: running (PID $(read_pid "$name"))"
        else echo "$name: not running"; rc=1; fi
    done
    if [ "$rc" = 0 ]; then sinfo; fi
    return "$rc"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
