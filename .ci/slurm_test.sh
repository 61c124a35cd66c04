#!/usr/bin/env bash
# CI step: build datasets locally and through SLURM (snakemake --executor slurm,
# via profiles/slurm) and require each pair of version folders to be identical:
#
#   1. the built-in phantom (20 studies of 256x256);
#   2. a 100-study phantom of 64x64 slices (raw data written beforehand);
#   3. a 2-study phantom of 64x64 slices, through SLURM only, with the job graph of
#      run 2 (two batch jobs, then the aggregate steps): its wall time is the fixed
#      submission and polling latency. Printed, as figures rather than pass/fail
#      tests, the per-study cost through SLURM two ways:
#        (wall of run 2 - wall of run 3) / 99 studies  (polling adds ~10 s steps)
#        span of run 2's batch jobs as SLURM saw them / 101 listed studies
#
# Each SLURM run cuts its studies into two batches of one CPU each
# (--set-threads build_studies=1, --config studies_per_job=about half), and the
# test requires that the two batch jobs ran at the same time on the single node.
#
#   bash .ci/slurm_test.sh          # as root, on Debian 12; slow (minutes)
#
# It installs what it needs when missing (Debian: slurmctld slurmd slurm-client
# munge; PyPI: the SLURM executor plugin, into the Python that runs Snakemake),
# starts a private single-node SLURM (.ci/slurm/start.sh), runs the builds,
# compares them (.ci/slurm/compare_datasets.py) and always stops the daemons it
# started (.ci/slurm/stop.sh), printing the SLURM logs when anything failed.
#
# Environment knobs (defaults in brackets):
#   PYTHON                 Python with Snakemake and the project installed [python3]
#   SLURM_TEST_SNAKEFILE   workflow to run [<repo>/Snakefile]
#   SLURM_TEST_WORKDIR     directory Snakemake runs in [the Snakefile's folder]
#   SLURM_TEST_PROFILE     SLURM profile [<repo>/profiles/slurm]
#   SLURM_TEST_CONFIG      extra --config KEY=VALUE words for every run []
#   SLURM_TEST_ARGS        extra arguments of the SLURM runs only []
#   SLURM_TEST_VERSION     dataset version folder to compare [1.0.0]
#   SLURM_TEST_CORES       cores of the local builds [2]
#   SLURM_TEST_LOCAL_TIMEOUT / SLURM_TEST_TIMEOUT   seconds per build [1200 / 1200]
#   SLURM_TEST_KEEP=1      keep the temporary build folder
#   SLURM_TEST_DIR         where the test cluster lives [/tmp/lvds-slurm]
set -euo pipefail
# The daemons (slurmctld, slurmd, munged) live in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/.ci/slurm
PYTHON=${PYTHON:-python3}
SNAKEFILE=$(realpath "${SLURM_TEST_SNAKEFILE:-$ROOT/Snakefile}")
WORKDIR=$(realpath "${SLURM_TEST_WORKDIR:-$(dirname "$SNAKEFILE")}")
PROFILE=$(realpath "${SLURM_TEST_PROFILE:-$ROOT/profiles/slurm}")
read -r -a EXTRA_CONFIG <<<"${SLURM_TEST_CONFIG:-}"
read -r -a SLURM_ARGS <<<"${SLURM_TEST_ARGS:-}"
VERSION=${SLURM_TEST_VERSION:-1.0.0}
CORES=${SLURM_TEST_CORES:-2}
LOCAL_TIMEOUT=${SLURM_TEST_LOCAL_TIMEOUT:-1200}
SLURM_TIMEOUT=${SLURM_TEST_TIMEOUT:-1200}
export SLURM_TEST_DIR=${SLURM_TEST_DIR:-/tmp/lvds-slurm}

# Versions this set-up was tested with (Debian 12 packages: slurm 22.05.8, munge 0.5.15).
PLUGIN_PINS=(
    "snakemake-executor-plugin-slurm==2.8.0"
    "snakemake-executor-plugin-slurm-jobstep==0.6.1"
)

log() { echo "[slurm test] $*"; }
die() { echo "[slurm test] FAILED: $*" >&2; exit 1; }
phase() { echo; echo "===== slurm test: $* ($(date -u +%H:%M:%S))"; }

[[ $(id -u) == 0 ]] || die "run as root (installs Debian packages, starts munged/slurmctld/slurmd)"
[[ -f $SNAKEFILE ]] || die "no workflow at $SNAKEFILE"
[[ -f $PROFILE/config.yaml ]] || die "no profile at $PROFILE/config.yaml"

# --- install (idempotent, quiet) ---------------------------------------------------
phase "install"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurmctld slurmd slurm-client munge from Debian"
    # The packages' maintainer scripts would start munge/slurmctld/slurmd through
    # /etc/init.d where no policy-rc.d forbids it; this test starts its own.
    policy_added=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || install_failed=1
    [[ $policy_added == 1 ]] && rm -f /usr/sbin/policy-rc.d
    [[ ${install_failed:-0} == 0 ]] || die "apt-get install of the SLURM packages failed"
fi
log "$(slurmctld -V), $(munged -V 2>&1 | head -1)"
if ! "$PYTHON" - "${PLUGIN_PINS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
then
    log "installing ${PLUGIN_PINS[*]}"
    "$PYTHON" -m pip install -q --disable-pip-version-check "${PLUGIN_PINS[@]}"
fi
log "snakemake $("$PYTHON" -m snakemake --version), $("$PYTHON" -m pip list 2>/dev/null | grep -i 'executor-plugin-slurm' | tr -s ' ' | paste -sd, -)"

# --- start SLURM; stop it again whatever happens --------------------------------------
TMP=$(mktemp -d /tmp/slurm-test.XXXXXX)
STAMP=$TMP/.start
touch "$STAMP"
we_started=1
pid=$(cat "$SLURM_TEST_DIR/run/slurmctld.pid" 2>/dev/null || true)
if [[ $pid =~ ^[0-9]+$ && $(cat /proc/"$pid"/comm 2>/dev/null) == slurmctld ]]; then
    we_started=0   # somebody's cluster under the same folder: use it, leave it running
fi

show_failure_logs() {
    local f
    echo "----- squeue (all jobs this cluster still knows) -----"
    timeout 10 squeue --states=all -o '%.6i %.10T %.10M %.20S %k' 2>&1 | tail -n 30 || true
    for f in "$SLURM_TEST_DIR"/log/slurmctld.log "$SLURM_TEST_DIR"/log/slurmd.log \
        "$SLURM_TEST_DIR"/munge/munged.log; do
        [[ -s $f ]] || continue
        echo "----- tail -n 60 $f -----"
        tail -n 60 "$f"
    done
    # logs of the cluster jobs of this run (the plugin keeps those of failed jobs)
    while IFS= read -r f; do
        echo "----- tail -n 60 $f -----"
        tail -n 60 "$f"
    done < <(find "$TMP/slurm_logs" -name '*.log' -newer "$STAMP" 2>/dev/null | sort | head -n 20)
}

finish() {
    local rc=$?
    set +e
    if [[ $rc != 0 ]]; then
        phase "FAILED (exit $rc): logs"
        show_failure_logs
    fi
    phase "stop SLURM"
    if [[ $we_started == 1 ]]; then
        "$HERE/stop.sh"
    else
        log "the cluster under $SLURM_TEST_DIR was running before this test: left running"
    fi
    if [[ $rc == 0 && ${SLURM_TEST_KEEP:-0} != 1 ]]; then
        rm -rf "$TMP"
    else
        log "builds and logs kept in $TMP"
    fi
    if [[ $rc == 0 ]]; then log "PASSED"; else log "FAILED (exit $rc)"; fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "start SLURM"
"$HERE/start.sh"
sinfo

# --- the builds ---------------------------------------------------------------------
cd "$WORKDIR"

# local_build NAME [--configfile FILE]: build into $TMP/NAME/local.
local_build() {
    local name=$1
    shift
    phase "$name: local build (--cores $CORES)"
    timeout -k 30 "$LOCAL_TIMEOUT" "$PYTHON" -m snakemake --snakefile "$SNAKEFILE" --cores "$CORES" \
        "$@" --config out_dir="$TMP/$name/local" "${EXTRA_CONFIG[@]}" \
        || die "$name: local build failed or timed out (exit $?)"
}

# slurm_build NAME STUDIES_PER_JOB [--configfile FILE]: build into $TMP/NAME/slurm through the
# executor, batches of STUDIES_PER_JOB studies on one CPU each; sets WALL (seconds)
# and JOBS (cluster jobs submitted).
slurm_build() {
    local name=$1 per_job=$2 t0
    shift 2
    phase "$name: SLURM build (--profile $PROFILE, $per_job studies per job, 1 CPU each)"
    t0=$(date +%s.%N)
    # A hung executor ignores SIGTERM ("will exit after finishing currently running
    # jobs"): timeout -k kills it 30 s later.
    timeout -k 30 "$SLURM_TIMEOUT" "$PYTHON" -m snakemake --snakefile "$SNAKEFILE" \
        --profile "$PROFILE" --slurm-logdir "$TMP/slurm_logs" --set-threads build_studies=1 \
        "${SLURM_ARGS[@]}" "$@" \
        --config out_dir="$TMP/$name/slurm" studies_per_job="$per_job" "${EXTRA_CONFIG[@]}" \
        2>&1 | tee "$TMP/$name/slurm_build.log" \
        || die "$name: SLURM build failed or timed out (exit ${PIPESTATUS[0]})"
    WALL=$(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }')
    JOBS=$(grep -c 'has been submitted with SLURM jobid' "$TMP/$name/slurm_build.log" || true)
    ((JOBS > 0)) || die "$name: the SLURM build submitted no cluster job (nothing ran through SLURM)"
    log "$name: SLURM build ${WALL}s in $JOBS cluster jobs"
}

# batch_jobs NAME: "AT_ONCE SPAN": the most build_studies cluster jobs that ran at the
# same time, and seconds from the first one's start to the last one's end (squeue keeps
# finished jobs for MinJobAge).
batch_jobs() {
    "$PYTHON" "$HERE/jobs_at_once.py" "$TMP/$1/slurm_build.log" build_studies
}

compare() {
    phase "$1: compare $TMP/$1/local/$VERSION with $TMP/$1/slurm/$VERSION"
    "$PYTHON" "$HERE/compare_datasets.py" "$TMP/$1/local/$VERSION" "$TMP/$1/slurm/$VERSION" \
        || die "$1: the SLURM build differs from the local build"
}

# build_both NAME PER_JOB: build locally and through SLURM (batches of PER_JOB), require the
# two byte-identical and at least two batch jobs at once; sets WALL and JOBS (slurm_build),
# AT_ONCE and SPAN (batch_jobs).
build_both() {
    local_build "$1"
    slurm_build "$1" "$2"
    compare "$1"
    read -r AT_ONCE SPAN < <(batch_jobs "$1")
    ((AT_ONCE >= 2)) || die "$1: batch jobs ran one at a time (at most $AT_ONCE at once)"
}

mkdir -p "$TMP/phantom" "$TMP/n100" "$TMP/n2"
# The raw data of runs 2 and 3, written beforehand: the per-study cost is the build's.
for n in 100 2; do
    "$PYTHON" -c "import sys; from workflow_scripts.raw.phantom import PhantomSpec, write_phantom
write_phantom(sys.argv[1], PhantomSpec.with_defaults(studies=$n, size=64))" "$TMP/raw$n"
done

# 1. the built-in phantom: 20 studies (+1 listed but missing) in 2 batches
build_both phantom 11
phantom_wall=$WALL phantom_jobs=$JOBS phantom_at_once=$AT_ONCE

# 2. 100 studies (+1 missing) of 64x64 in 2 batches
EXTRA_CONFIG+=(data_dir="$TMP/raw100")
build_both n100 51
n100_wall=$WALL n100_jobs=$JOBS n100_at_once=$AT_ONCE n100_span=$SPAN

# 3. the fixed latency: the same job graph with 2 studies (+1 missing)
EXTRA_CONFIG[-1]=data_dir="$TMP/raw2"
slurm_build n2 2
n2_wall=$WALL

phase "summary"
log "phantom: SLURM ${phantom_wall}s, $phantom_jobs cluster jobs, up to $phantom_at_once batch jobs at once; identical to the local build"
log "100 studies: SLURM ${n100_wall}s, $n100_jobs cluster jobs, up to $n100_at_once batch jobs at once; identical to the local build"
log "fixed latency (2 studies, the same job graph): ${n2_wall}s"
awk -v a="$n100_wall" -v b="$n2_wall" -v span="$n100_span" 'BEGIN {
    printf "[slurm test] per-study cost through SLURM (target < 0.2 s): (%s - %s) s / 99 studies = %.3f s; batch jobs as SLURM saw them: %s s / 101 studies = %.3f s\n", a, b, (a - b) / 99, span, span / 101 }'
