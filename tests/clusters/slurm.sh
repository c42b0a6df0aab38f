#!/usr/bin/env bash
# A one-node Slurm cluster for the launcher tests, all its files under DIR (config, munge key
# and socket, state, logs): `slurm.sh up DIR` starts munged, slurmctld and slurmd and waits
# until the node is idle; `slurm.sh down DIR` stops them. Clients find it through
# SLURM_CONF=DIR/slurm.conf. Needs root and Debian's slurmctld slurmd slurm-client munge.
set -euo pipefail
action=${1:?usage: slurm.sh up|down DIR}
dir=$(realpath -m "${2:?usage: slurm.sh up|down DIR}")
export SLURM_CONF="$dir/slurm.conf"

down() {
  local pids=()
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then pids+=("$(cat "$dir/$name.pid")"); rm -f "$dir/$name.pid"; fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "${pids[@]}" 2>/dev/null || return 0
    sleep 0.25
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
}

if [ "$action" = down ]; then down; exit 0; fi
for tool in munged mungekey slurmctld slurmd sbatch squeue scontrol; do
  command -v "$tool" >/dev/null || { echo "no $tool (apt-get install slurmctld slurmd slurm-client munge)"; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "starting slurmd needs root"; exit 3; }
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || mungekey -c -k "$dir/munge/munge.key" -f
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > "$SLURM_CONF" <<CONF
ClusterName=runlab
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job waits cred_expire seconds before it starts again (default 120)
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
MaxArraySize=1001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
# Slurm 23.11 and later set up cgroups in slurmd even for proctrack/linuxproc unless told not to
# (this machine's kind has no cgroup delegation); 22.05 knows no "disabled" and needs no file.
major=$(slurmd -V | awk '{print $2}' | cut -d. -f1)
if [ "${major:-0}" -ge 23 ]; then echo "CgroupPlugin=disabled" > "$dir/cgroup.conf"; fi
down
if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
  echo "a slurmctld or slurmd of another cluster runs on this machine: stop it first"; exit 3
fi
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then echo "slurm up: SLURM_CONF=$SLURM_CONF"; exit 0; fi
  sleep 0.5
done
echo "slurm did not come up: see $dir/slurmctld.log and $dir/slurmd.log"
tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" 2>/dev/null || true
exit 1
