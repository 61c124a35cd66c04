#!/usr/bin/env bash
# Stop the single-node SLURM started by start.sh.
#  1. While our slurmctld is up, cancel every job still queued or running on this
#     private cluster and give them 15 s to go (a job step's slurmstepd would
#     otherwise outlive slurmd).
#  2. Stop exactly the PIDs recorded in $SLURM_TEST_DIR/run/{slurmd,slurmctld,
#     munged}.pid, in reverse start order (a PID is only signalled while
#     /proc/PID/comm still names the expected daemon): SIGTERM, wait up to 15 s,
#     then SIGKILL.
#  3. Kill stray job steps of this cluster, with all their descendants: a
#     slurmstepd whose working directory is under $SLURM_TEST_DIR (slurmd runs
#     them from its log dir). There are none unless slurmd died before the jobs
#     could be cancelled (slurmstepd is detached from slurmd and outlives it).
#  4. Remove the /etc/slurm/slurm.conf symlink start.sh made. This matters: with
#     snakemake-executor-plugin-slurm installed, every `snakemake` start runs
#     `scontrol show config` (at import, for its --help text), which waits ~9 s
#     for a controller that a leftover config names but that is gone.
# Idempotent: nothing recorded -> nothing to do. State and logs are kept.
set -euo pipefail

DIR=${SLURM_TEST_DIR:-/tmp/lvds-slurm}
log() { echo "[slurm stop] $*" >&2; }

pid_of() {  # pid_of NAME: recorded pid if it still is a live NAME process
    local f=$DIR/run/$1.pid pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$1" ]] || return 1
    echo "$pid"
}

stop_one() {  # stop_one NAME
    local name=$1 pid
    if ! pid=$(pid_of "$name"); then
        rm -f "$DIR/run/$name.pid"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        [[ -d /proc/$pid ]] || break
        # a zombie (state Z) has exited; its parent (init) will reap it
        [[ $(awk '/^State:/{print $2}' /proc/"$pid"/status 2>/dev/null) == Z ]] && break
        sleep 0.1
    done
    if [[ -d /proc/$pid && $(awk '/^State:/{print $2}' /proc/"$pid"/status 2>/dev/null) != Z ]]; then
        log "$name (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    fi
    rm -f "$DIR/run/$name.pid"
}

drop_conf_link() {
    if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$DIR/slurm.conf" ]]; then
        rm -f /etc/slurm/slurm.conf
    fi
}

kill_stray_steps() {
    local p cwd roots=() tree
    for p in $(pgrep -x slurmstepd || true); do
        cwd=$(readlink "/proc/$p/cwd" 2>/dev/null || true)
        [[ $cwd == "$DIR" || $cwd == "$DIR"/* ]] && roots+=("$p")
    done
    ((${#roots[@]})) || return 0
    tree=$(ps -eo pid=,ppid= | awk -v roots="${roots[*]}" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
        { parent[$1] = $2 }
        END {
            do { added = 0
                 for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; added = 1 }
            } while (added)
            for (p in keep) print p
        }')
    log "killing stray job steps of this cluster and their processes: ${tree//$'\n'/ }"
    # shellcheck disable=SC2086
    kill -KILL $tree 2>/dev/null || true
}

if [[ ! -d $DIR/run ]]; then
    drop_conf_link
    log "nothing recorded under $DIR/run"
    exit 0
fi

# Cancel leftover jobs, only if the slurmctld answering is ours (config symlink
# from start.sh in place).
if pid_of slurmctld >/dev/null && [[ $(readlink /etc/slurm/slurm.conf) == "$DIR/slurm.conf" ]]; then
    jobs=$(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        log "cancelling leftover jobs: ${jobs//$'\n'/ }"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs || true
        for _ in $(seq 15); do
            [[ -z $(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null || true) ]] && break
            sleep 1
        done
    fi
fi
stop_one slurmd
stop_one slurmctld
stop_one munged
rm -f "$DIR/munge/munged.pid"
kill_stray_steps
drop_conf_link
log "stopped (state and logs kept under $DIR)"
