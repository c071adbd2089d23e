#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying the pipeline's SLURM path and for its tests.
#
#   scripts/slurm_cluster.sh start    install (apt-get, once) and start munge, mariadb, slurmdbd, slurmctld, slurmd
#   scripts/slurm_cluster.sh stop     cancel every job and tear everything down, whatever state it is in
#   scripts/slurm_cluster.sh status   exit 0 when the node is up and sacct answers, 1 otherwise
#
# Needs root (it writes /etc/slurm and runs the daemons as root). All runtime state (munge key and socket,
# the mariadb data directory, slurm spool/state/logs) lives in one directory, $VITPOSE_SLURM_DIR
# (default /var/lib/vitpose-slurm), which `stop` deletes. Our own munged and mariadbd run beside any the
# machine already has (own socket, mariadb on 127.0.0.1:$VITPOSE_SLURM_DB_PORT, default 3307).
# /etc/slurm/slurm.conf and slurmdbd.conf are written only if absent or written by this script before
# (marked "managed by vitpose"), so a real SLURM installation is never overwritten.
set -euo pipefail

STATE=${VITPOSE_SLURM_DIR:-/var/lib/vitpose-slurm}
[[ $STATE == /?* && $STATE != *..* ]] || { echo "slurm_cluster: error: VITPOSE_SLURM_DIR must be an absolute path, got '$STATE'" >&2; exit 2; }
DB_PORT=${VITPOSE_SLURM_DB_PORT:-3307}
CONF_DIR=/etc/slurm
MARK="# managed by vitpose scripts/slurm_cluster.sh"
CLUSTER=vitpose
NODE=localhost
PARTITION=debug
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server mariadb-client)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)  # in start order

log() { echo "slurm_cluster: $*" >&2; }
die() { echo "slurm_cluster: error: $*" >&2; exit 2; }

pidfile() { echo "$STATE/run/$1.pid"; }
alive() {  # alive DAEMON: its pid file names a running process
    local f; f=$(pidfile "$1")
    [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds
    local secs=$1 what=$2; shift 2
    for ((i = 0; i < secs * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$what did not come up within ${secs}s (logs in $STATE/log)"
}

require_root() { [[ $(id -u) == 0 ]] || die "run as root (the daemons and /etc/slurm need it)"; }

install_packages() {
    local missing=()
    for bin in slurmctld slurmd slurmdbd munged mariadbd mariadb-install-db mariadb sacct sacctmgr; do
        command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    # Package scripts would start the distribution's own services; we run private instances instead, so
    # forbid service starts during the install (policy-rc.d exit 101), unless the machine has its own policy.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    local rc=0
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${PACKAGES[@]}"; } >&2 || rc=$?
    ((own_policy)) && rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${PACKAGES[*]} failed (exit $rc)"
}

guard_conf() {  # refuse to overwrite a slurm config this script did not write
    local f=$1
    if [[ -e $f ]] && ! grep -qF "$MARK" "$f"; then
        die "$f exists and was not written by this script; move it away to use the test cluster"
    fi
}

write_configs() {
    local cpus mem_mb def_mem
    cpus=$(nproc)
    # Leave a little memory to the system; DefMemPerCPU gives a job without --mem its CPU share instead of
    # the whole node, so several jobs can run side by side.
    mem_mb=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10))
    def_mem=$((mem_mb / cpus))
    mkdir -p "$CONF_DIR"
    guard_conf "$CONF_DIR/slurm.conf"
    guard_conf "$CONF_DIR/slurmdbd.conf"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=localhost
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# No cgroups in containers: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
ReturnToService=2
# Short delays so that tests of requeue and cancellation stay fast.
KillWait=10
MinJobAge=600
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# For auth/munge this names the munge socket used to talk to slurmdbd (AuthInfo covers the other daemons).
AccountingStoragePass=$STATE/munge/munge.socket
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
DbdHost=localhost
SlurmUser=root
PidFile=$(pidfile slurmdbd)
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF_DIR/slurmdbd.conf"
}

start_munge() {
    mkdir -p "$STATE/munge" && chmod 700 "$STATE/munge"
    [[ -s $STATE/munge/munge.key ]] || { dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
                                        chmod 400 "$STATE/munge/munge.key"; }
    # --force: munged otherwise refuses to run as root or under a world-writable parent such as /var/tmp.
    munged --force --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
        --pid-file="$(pidfile munged)" --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/munge.seed"
    wait_for 20 munged munge --socket="$STATE/munge/munge.socket" -n
}

start_mariadb() {
    local sock=$STATE/mysql/mysqld.sock
    if [[ ! -d $STATE/mysql/data/mysql ]]; then
        mkdir -p "$STATE/mysql/data"
        mariadb-install-db --user=root --datadir="$STATE/mysql/data" --auth-root-authentication-method=socket \
            >"$STATE/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
    fi
    setsid mariadbd --no-defaults --user=root --datadir="$STATE/mysql/data" --socket="$sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$(pidfile mariadbd)" \
        --log-error="$STATE/log/mariadbd.log" --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 >/dev/null 2>&1 &
    wait_for 60 mariadbd mariadb --no-defaults --socket="$sock" -e "select 1"
    mariadb --no-defaults --socket="$sock" -e "
        CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

node_idle() { sinfo -h -n "$NODE" -o %t 2>/dev/null | grep -qx idle; }

start() {
    require_root
    if healthy; then log "already running"; return 0; fi
    # Anything half-started is torn down first, so start always ends in the same state.
    stop_all
    install_packages
    mkdir -p "$STATE"/{run,log,ctld,spool}
    write_configs
    start_munge
    start_mariadb
    slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true   # "already exists" is fine
    slurmctld
    wait_for 60 slurmctld scontrol ping
    slurmd -N "$NODE"
    wait_for 60 "node $NODE idle" node_idle
    wait_for 30 sacct sacct -n -X -S now
    log "up: partition $PARTITION, node $NODE, $(nproc) CPUs, no GPUs; state in $STATE"
}

healthy() {
    for d in "${DAEMONS[@]}"; do alive "$d" || return 1; done
    node_idle_or_busy && sacct -n -X -S now >/dev/null 2>&1
}
node_idle_or_busy() { sinfo -h -n "$NODE" -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)$'; }

stop_daemons() {  # TERM the given daemons together, KILL what is left after 10 s
    local pids=() d f pid
    for d in "$@"; do
        f=$(pidfile "$d")
        if [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then pids+=("$(cat "$f")"); kill "${pids[-1]}" 2>/dev/null || true; fi
        rm -f "$f"
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    done
}

stop_all() {
    if alive slurmctld; then
        # Cancel our jobs so that no job process outlives the cluster; slurmd kills their steps.
        scancel --full --quiet --partition="$PARTITION" 2>/dev/null || true
        for ((i = 0; i < 60; i++)); do
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.25
        done
    fi
    # The slurm daemons first (slurmdbd last of them, to take the final accounting records), then its database.
    stop_daemons slurmd slurmctld
    stop_daemons slurmdbd
    stop_daemons mariadbd munged
    for f in "$CONF_DIR/slurm.conf" "$CONF_DIR/slurmdbd.conf"; do
        [[ -e $f ]] && grep -qF "$MARK" "$f" && rm -f "$f"
    done
    rm -rf "$STATE"
}

status() {
    local ok=0
    for d in "${DAEMONS[@]}"; do
        if alive "$d"; then echo "$d: running (pid $(cat "$(pidfile "$d")"))"; else echo "$d: stopped"; ok=1; fi
    done
    if ((ok == 0)); then
        sinfo -N -o "%N %P %t %c %m" || ok=1
        sacct -n -X -S now >/dev/null 2>&1 && echo "sacct: ok" || { echo "sacct: not answering"; ok=1; }
    fi
    return $ok
}

case "${1:-}" in
    start) start ;;
    stop) require_root; stop_all; log "stopped" ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
