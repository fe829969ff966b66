#!/usr/bin/env bash
# Stop the daemons started by start_slurm.sh (by their pid files only).
set -uo pipefail
DIR=${1:-/tmp/sfc-slurm}
for daemon in slurmd slurmctld munged; do
  if [[ -f "$DIR/$daemon.pid" ]]; then
    kill "$(cat "$DIR/$daemon.pid")" 2>/dev/null && echo "stopped $daemon"
    rm -f "$DIR/$daemon.pid"
  fi
done
