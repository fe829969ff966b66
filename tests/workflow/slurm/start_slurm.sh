#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (127.0.0.1) for the workflow's SLURM test.
#
#   tests/workflow/slurm/start_slurm.sh [STATE_DIR]      (default /tmp/sfc-slurm; needs root)
#   export SLURM_CONF=STATE_DIR/slurm.conf               (printed on the last line)
#   tests/workflow/slurm/stop_slurm.sh [STATE_DIR]
#
# Needs Debian's `slurmctld slurmd slurm-client munge` (apt-get install -y --no-install-recommends
# slurmctld slurmd slurm-client munge). Writes its own slurm.conf (SLURM_CONF) instead of touching
# /etc/slurm; runs munged (if none is running), slurmctld and slurmd, each with a pid file in STATE_DIR.
# slurmd runs configless (it fetches this file from slurmctld and passes it on to jobs).
# No slurmdbd: sacct/squeue read job states from slurmctld (MinJobAge keeps finished jobs visible).
set -euo pipefail

DIR=${1:-/tmp/sfc-slurm}
NODE=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)

for tool in munged slurmctld slurmd sbatch sinfo; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 3; }
done
mkdir -p "$DIR"/{state,spool,log}

cat > "$DIR/slurm.conf" <<CONF
ClusterName=sfctest
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MinJobAge=600
# configless: slurmd hands its cached copy of this file to the jobs (SLURM_CONF), so srun inside
# a job finds the cluster without /etc/slurm/slurm.conf
SlurmctldParameters=enable_configless
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF=$DIR/slurm.conf

# munged: reuse a running one, else start it (pid file in DIR)
if ! munge -n >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  munged --force --pid-file="$DIR/munged.pid" || { echo "munged failed to start" >&2; exit 4; }
  sleep 1
fi
munge -n | unmunge >/dev/null || { echo "munge does not work" >&2; exit 4; }

# slurmctld / slurmd (kill only the ones this script started before, by pid file)
for daemon in slurmctld slurmd; do
  if [[ -f "$DIR/$daemon.pid" ]] && kill -0 "$(cat "$DIR/$daemon.pid")" 2>/dev/null; then
    kill "$(cat "$DIR/$daemon.pid")"; sleep 1
  fi
done
slurmctld -c -f "$SLURM_CONF"
slurmd --conf-server "127.0.0.1:16817"

for _ in $(seq 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm up: node $NODE, $CPUS CPUs, ${MEM_MB} MB"
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "slurm did not come up; see $DIR/log" >&2
tail -5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
exit 5
