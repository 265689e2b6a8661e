#!/usr/bin/env bash
# A throwaway one-node Slurm cluster in a directory, for the Slurm tests (as root, with
# Debian's slurm-wlm and munge installed):
#   scripts/slurm-cluster.sh start DIR   munged, slurmctld and slurmd with their config,
#                                        state, logs and ports all under DIR; prints the
#                                        SLURM_CONF to export
#   scripts/slurm-cluster.sh stop DIR    cancels its jobs and stops the daemons
set -euo pipefail
action=${1:?usage: slurm-cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: slurm-cluster.sh start|stop DIR}")
conf="$dir/slurm.conf"

stop() {
  if [ -f "$conf" ]; then
    SLURM_CONF="$conf" scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  for pidfile in slurmd.pid slurmctld.pid munge/munged.pid; do
    if [ -f "$dir/$pidfile" ]; then
      kill "$(cat "$dir/$pidfile")" 2>/dev/null || true
    fi
  done
}

case "$action" in
start)
  for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || { echo "slurm-cluster: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 3; }
  done
  [ "$(id -u)" = 0 ] || { echo "slurm-cluster: needs root (slurmd runs jobs as their users)" >&2; exit 3; }
  mkdir -p "$dir"/{state,spool,log,munge}
  chmod 700 "$dir/munge"
  head -c 1024 /dev/urandom > "$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed"
  host=$(hostname -s)
  # Ports from the directory's name, so clusters of parallel tests do not collide.
  base=$(( 20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 ))
  cat > "$conf" <<CONF
ClusterName=vaelabtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
KillWait=20
MinJobAge=600
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$conf"
  slurmctld -f "$conf"
  slurmd -f "$conf"
  for _ in $(seq 60); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
    if [ "$state" = idle ]; then
      echo "$conf"
      exit 0
    fi
    sleep 0.5
  done
  echo "slurm-cluster: the node did not come up (state: ${state:-none}); logs in $dir/log" >&2
  tail -n 20 "$dir"/log/*.log >&2 || true
  stop
  exit 1
  ;;
stop)
  stop
  ;;
*)
  echo "usage: slurm-cluster.sh start|stop DIR" >&2
  exit 2
  ;;
esac
