#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, to try profiles/slurm before a real cluster
# (README "Run on SLURM"). Debian/Ubuntu, as root, no systemd and no cgroups needed.
#
#   profiles/slurm/local-cluster.sh start    # install what is missing, start, wait for the node
#   profiles/slurm/local-cluster.sh status   # each daemon, the node, the account
#   profiles/slurm/local-cluster.sh stop     # end the daemons this script started (pid files)
#
# start installs slurm-wlm, munge, slurmdbd and mariadb-server with apt-get when one is missing
# (~30 s), then starts munged, MariaDB (accounting storage: without it `sacct` fails and the
# SLURM executor plugin never sees a job finish), slurmdbd, slurmctld and slurmd, registers the
# cluster, the account and the submitting user, and waits until the node is idle (~10 s). It is
# idempotent: a daemon already running from its pid file is left alone.
#
# Everything it writes lives under $EDCO_SLURM_DIR (default /var/lib/edco-slurm): configs,
# munge key and socket, MariaDB's data, pid files, logs, spool. The one thing outside it is
# /etc/slurm/slurm.conf, a link to $EDCO_SLURM_DIR/etc/slurm.conf so that sbatch, sacct and
# sinfo find the cluster from any shell; it is only made where no slurm.conf exists (else
# `export SLURM_CONF=$EDCO_SLURM_DIR/etc/slurm.conf`, which `env` prints).
#
# The node: every CPU, 85 % of the RAM, two partitions on it: `cpu` (default) and `gpu`, whose
# $EDCO_SLURM_GPUS (default 8) GPUs are stand-ins (empty files as their devices): a job asking
# `--gpus` is accepted and scheduled as on a real GPU partition, it just finds no GPU.
# Memory is enforced by polling (JobAcctGatherParams=OverMemoryKill, every second): a job
# above its --mem is killed and ends OUT_OF_MEMORY, as under cgroups on a real cluster.
set -euo pipefail

DIR="${EDCO_SLURM_DIR:-/var/lib/edco-slurm}"
CLUSTER="${EDCO_SLURM_CLUSTER:-edco-local}"
ACCOUNT="${EDCO_SLURM_ACCOUNT:-edco}"
GPUS="${EDCO_SLURM_GPUS:-8}"
DB_PORT="${EDCO_SLURM_DB_PORT:-3307}"        # MariaDB on 127.0.0.1 only; not 3306, a system one may use it
USERS="${EDCO_SLURM_USERS:-${SUDO_USER:-$(id -un)}}"   # who may submit (comma-separated)
NODE="$(hostname -s)"
export SLURM_CONF="$DIR/etc/slurm.conf"
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)

log() { echo "local-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# A pid file's process, if it is alive and is the daemon named (a stale pid reused by another
# program is not ours).
alive() {  # alive <pidfile> <comm>
    local pid
    [ -s "$1" ] || return 1
    pid="$(cat "$1")"
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}

why_not_up() {  # the node's state and reason and the daemons' last errors, for die's message
    echo; echo "node: $(sinfo -h -n "$NODE" -o '%T %E' 2>/dev/null | head -1)"
    local daemon
    for daemon in slurmctld slurmd slurmdbd; do
        [ -f "$DIR/log/$daemon.log" ] && grep -h 'error' "$DIR/log/$daemon.log" | tail -n 3 | sed "s/^/$daemon: /"
    done
}

wait_for() {  # wait_for <seconds> <what> <command...>
    local seconds="$1" what="$2" deadline=$((SECONDS + $1)); shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what not up after ${seconds}s (logs: $DIR/log/)$(why_not_up)"
        sleep 0.25
    done
}

install_packages() {
    local missing=()
    for cmd in sbatch:slurm-wlm slurmctld:slurm-wlm munged:munge slurmdbd:slurmdbd mariadbd:mariadb-server; do
        command -v "${cmd%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${cmd%%:*}" ] || missing+=("${cmd##*:}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "needs root to install ${missing[*]} (apt-get)"
    log "installing ${PACKAGES[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # The package list may be empty on a fresh machine: update once, then install.
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$DIR/log/apt.log" 2>&1; then
        apt-get update -q >>"$DIR/log/apt.log" 2>&1
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$DIR/log/apt.log" 2>&1 \
            || die "apt-get install failed: $DIR/log/apt.log"
    fi
}

write_configs() {
    local cpus mem_mb
    # The CPUs slurmd itself counts (a node configured with more is drained: "Low CPUs"); not
    # plain `nproc`, which reports OMP_NUM_THREADS when the caller has it set.
    cpus="$(slurmd -C 2>/dev/null | sed -n 's/.*CPUs=\([0-9][0-9]*\).*/\1/p' | head -n 1)"
    [ -n "$cpus" ] || cpus="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
    mem_mb="$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.85}' /proc/meminfo)"
    mkdir -p "$DIR/etc" "$DIR/run" "$DIR/log" "$DIR/state/ctld" "$DIR/state/d"
    [ -s "$DIR/etc/db-password" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DIR/etc/db-password")
    cat >"$DIR/etc/slurm.conf" <<EOF
# Written by profiles/slurm/local-cluster.sh: a one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups: processes tracked through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue for 5 min (the plugin's squeue fallback needs >= 3 x its first wait).
MinJobAge=300
SchedulerParameters=sched_interval=2
# Accounting: sacct (the plugin's status command) reads slurmdbd.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# The munge socket for slurmdbd connections (sacct, sacctmgr): AuthInfo covers only the cluster's own.
AccountingStoragePass=$DIR/munge/munge.socket.2
AccountingStorageEnforce=associations
# sacct shows the comment the plugin gives each job: rule_<rule>_wildcards_<wildcards>.
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
# Memory above a job's --mem is killed (polled every second; no cgroups here).
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
GresTypes=gpu
NodeName=$NODE CPUs=$cpus RealMemory=$mem_mb Gres=gpu:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF
    # Stand-in GPUs: slurmd drops a gres/gpu without device files, so each is an empty file
    # under $DIR/dev. --gpus is accepted, scheduled and sets CUDA_VISIBLE_DEVICES; no device exists.
    mkdir -p "$DIR/dev"
    for i in $(seq 0 $((GPUS - 1))); do : >"$DIR/dev/gpu$i"; done
    echo "NodeName=$NODE Name=gpu File=$DIR/dev/gpu[0-$((GPUS - 1))]" >"$DIR/etc/gres.conf"
    (umask 077; cat >"$DIR/etc/slurmdbd.conf" <<EOF
# Written by profiles/slurm/local-cluster.sh.
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$DIR/etc/db-password")
StorageLoc=slurm_acct_db
EOF
    )
    chmod 600 "$DIR/etc/slurmdbd.conf"
    chmod 644 "$DIR/etc/slurm.conf" "$DIR/etc/gres.conf"
    if [ ! -e /etc/slurm/slurm.conf ] || [ "$(readlink /etc/slurm/slurm.conf)" = "$DIR/etc/slurm.conf" ]; then
        mkdir -p /etc/slurm && ln -sfn "$DIR/etc/slurm.conf" /etc/slurm/slurm.conf
    else
        log "/etc/slurm/slurm.conf is not this cluster's: export SLURM_CONF=$DIR/etc/slurm.conf"
    fi
    # The node name must resolve for slurmctld and slurmd.
    getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >>/etc/hosts
}

start_munge() {
    alive "$DIR/munge/munged.pid" munged && return 0
    install -d -o munge -g munge -m 755 "$DIR/munge"  # the socket needs x for all
    if [ ! -s "$DIR/munge/munge.key" ]; then
        mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null
        chown munge:munge "$DIR/munge/munge.key"; chmod 400 "$DIR/munge/munge.key"
    fi
    runuser -u munge -- munged --socket="$DIR/munge/munge.socket.2" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
    wait_for 10 munged munge --socket="$DIR/munge/munge.socket.2" -n
}

db() { mariadb --no-defaults --socket="$DIR/mysql-run/mariadb.sock" -u root "$@"; }

start_mariadb() {
    if ! alive "$DIR/mysql-run/mariadb.pid" mariadbd; then
        install -d -o mysql -g mysql -m 750 "$DIR/mysql" "$DIR/mysql-run"
        if [ ! -d "$DIR/mysql/mysql" ]; then
            mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/mysql" --skip-test-db \
                --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1 \
                || die "mariadb-install-db failed: $DIR/log/mariadb-install.log"
        fi
        # Its own session, so that it outlives this shell.
        setsid mariadbd --no-defaults --user=mysql --datadir="$DIR/mysql" --bind-address=127.0.0.1 \
            --port="$DB_PORT" --socket="$DIR/mysql-run/mariadb.sock" --pid-file="$DIR/mysql-run/mariadb.pid" \
            --log-error="$DIR/log/mariadb.log" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
        wait_for 30 MariaDB db -e "SELECT 1"
    fi
    local pw
    pw="$(cat "$DIR/etc/db-password")"
    db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
           CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pw';
           CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_daemon() {  # start_daemon <name> <pidfile> <check command...>
    local name="$1" pidfile="$2"; shift 2
    alive "$pidfile" "$name" && return 0
    # Each daemon forks into the background and writes its pid file itself.
    "/usr/sbin/$name" </dev/null >"$DIR/log/$name.stdout" 2>&1 || die "$name did not start: $DIR/log/$name.log"
    wait_for 30 "$name" "$@"
}

register() {
    # The cluster, an account, and every submitting user's association with it (root exists as
    # a user already: check the association, not the user).
    sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" \
        || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -n -P show account "$ACCOUNT" format=account | grep -qx "$ACCOUNT" \
        || sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="EDCO-bench" organization=edco >/dev/null
    local user
    for user in ${USERS//,/ }; do
        sacctmgr -n -P show assoc cluster="$CLUSTER" account="$ACCOUNT" user="$user" format=user | grep -qx "$user" \
            || sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
        sacctmgr -i modify user "$user" set defaultaccount="$ACCOUNT" >/dev/null 2>&1 || true
    done
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }

node_ready() {
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        down* | drain* | drained*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1; return 1 ;;
        *) return 1 ;;
    esac
}

start() {
    [ "$(id -u)" -eq 0 ] || die "run as root (it starts munged, MariaDB and the SLURM daemons)"
    mkdir -p "$DIR/log"
    install_packages
    write_configs
    start_munge
    start_mariadb
    start_daemon slurmdbd "$DIR/run/slurmdbd.pid" sacctmgr -n show cluster
    register
    start_daemon slurmctld "$DIR/run/slurmctld.pid" scontrol ping
    start_daemon slurmd "$DIR/run/slurmd.pid" node_ready
    wait_for 30 "node $NODE idle" node_ready
    log "up: node $NODE $(node_state), cluster $CLUSTER, account $ACCOUNT (SLURM_CONF=$SLURM_CONF)"
}

stop() {
    local entry pidfile comm pid
    for entry in "run/slurmd.pid:slurmd" "run/slurmctld.pid:slurmctld" "run/slurmdbd.pid:slurmdbd" \
                 "mysql-run/mariadb.pid:mariadbd" "munge/munged.pid:munged"; do
        pidfile="$DIR/${entry%%:*}"; comm="${entry##*:}"
        alive "$pidfile" "$comm" || continue
        pid="$(cat "$pidfile")"
        kill "$pid"
        for _ in $(seq 80); do [ -d "/proc/$pid" ] || break; sleep 0.25; done
        if [ -d "/proc/$pid" ]; then log "$comm ($pid) ignored SIGTERM for 20 s: SIGKILL"; kill -9 "$pid"; fi
        rm -f "$pidfile"
        log "stopped $comm ($pid)"
    done
}

status() {
    local entry rc=0
    for entry in "munge/munged.pid:munged" "mysql-run/mariadb.pid:mariadbd" "run/slurmdbd.pid:slurmdbd" \
                 "run/slurmctld.pid:slurmctld" "run/slurmd.pid:slurmd"; do
        if alive "$DIR/${entry%%:*}" "${entry##*:}"; then
            echo "${entry##*:}: running ($(cat "$DIR/${entry%%:*}"))"
        else
            echo "${entry##*:}: stopped"; rc=1
        fi
    done
    [ "$rc" -eq 0 ] || return "$rc"
    echo "node $NODE: $(node_state)"
    sacctmgr -n -P show assoc cluster="$CLUSTER" format=account,user | sed 's/^/association: /'
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 {start|stop|status|env}" >&2; exit 2 ;;
esac
