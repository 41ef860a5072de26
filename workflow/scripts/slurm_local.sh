#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, for running the workflow through the SLURM profile.
#
#   workflow/scripts/slurm_local.sh start          install (Debian packages) and start munge, slurmctld, slurmd
#   workflow/scripts/slurm_local.sh run [ARGS...]  start, run snakemake --profile workflow/profiles/slurm-local
#                                                  ARGS..., and stop again whatever happens
#   workflow/scripts/slurm_local.sh stop           stop the daemons by the process ids recorded at start
#
# Needs root and Debian's packages (apt). What keeps it working in a container: no cgroups, no accounting,
# node memory advertised at 90% of what slurmd detects, MinJobAge long enough for squeue status checks.
set -euo pipefail
STATE=/run/prunestudy-slurm  # the daemons are machine-wide, so is their record
PIDS=$STATE/pids

log() { echo "[slurm_local] $*" >&2; }

# live (non-zombie) daemons: a sandbox without an init process may never reap the ones we killed
running() { ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 ~ /^(munged|slurmctld|slurmd)$/ {print $2}'; }

install() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then return; fi
  log "installing slurmctld slurmd slurm-client munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
  local host node cpus mem
  host=$(hostname -s)
  node=$(slurmd -C | head -n 1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  # the CPU layout as slurmd reports it, the memory at 90%
  local layout
  layout=$(grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' \
    <<<"$node")
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  cat >/etc/slurm/slurm.conf <<CONF
ClusterName=prunestudy
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MinJobAge=3600
NodeName=${host} NodeAddr=127.0.0.1 ${layout} RealMemory=$((mem * 9 / 10)) State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
  log "node ${host}: ${cpus} CPUs, $((mem * 9 / 10)) MB advertised"
}

start() {
  install
  mkdir -p "$STATE"
  if [ -s "$PIDS" ]; then log "already started (pids in $PIDS)"; return; fi
  if [ -n "$(running)" ]; then
    log "munged/slurmctld/slurmd already run here, not started by this script: stop them first"; exit 1
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || (mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null)
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  runuser -u munge -- munged
  munge -n | unmunge >/dev/null
  write_conf
  # a fresh cluster: state or pid files that a killed earlier one left would hold the node or name the wrong pids
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* /run/slurmctld.pid /run/slurmd.pid
  slurmctld
  slurmd
  for _ in $(seq 50); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then break; fi
    sleep 0.2
  done
  sinfo -h -o %T | grep -qx idle || { log "node did not come up idle"; sinfo; exit 1; }
  echo "$(cat /run/munge/munged.pid) $(cat /run/slurmctld.pid) $(cat /run/slurmd.pid)" >"$PIDS"
  log "cluster up; pids $(cat "$PIDS")"
}

stop() {
  [ -s "$PIDS" ] || { log "not started"; return; }
  local pids
  read -r -a pids <"$PIDS"
  kill "${pids[2]}" "${pids[1]}" 2>/dev/null || true  # slurmd, slurmctld
  for _ in $(seq 50); do kill -0 "${pids[1]}" 2>/dev/null || kill -0 "${pids[2]}" 2>/dev/null || break; sleep 0.1; done
  kill "${pids[0]}" 2>/dev/null || true  # munged
  rm -f /run/slurmctld.pid /run/slurmd.pid "$PIDS"
  log "stopped"
}

run() {
  start
  trap stop EXIT
  local here
  here=$(cd "$(dirname "$0")/../.." && pwd)
  timeout -s INT "${PRUNESTUDY_SLURM_TIMEOUT:-3000}" \
    python -m snakemake -s "$here/Snakefile" --profile "$here/workflow/profiles/slurm-local" "$@"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 {start|stop|run [snakemake args...]}" >&2; exit 2 ;;
esac
