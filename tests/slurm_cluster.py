"""A throw-away single-node SLURM cluster on this machine, for the integration test.

Built from Debian's ``slurm-wlm`` and ``munge`` packages (``.ci/run`` installs them). The
daemons run as root with every file in a temporary folder, except one: the SLURM job-step
executor plugin strips ``SLURM_*`` variables (``SLURM_CONF`` among them) before it calls
``srun`` inside a job, so ``srun`` only finds the configuration at the compiled-in default
``/etc/slurm/slurm.conf``. The cluster writes it there if no file is there, and removes it
afterwards; it refuses to run over an existing configuration.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager, suppress
from pathlib import Path

DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_requirements() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for tool in (*DAEMONS, "sbatch", "squeue", "sinfo", "srun"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} not installed (apt-get install slurm-wlm munge; .ci/run does this)"
    if os.geteuid() != 0:
        return "the test cluster's daemons must be started as root"
    if DEFAULT_CONF.exists():
        return f"{DEFAULT_CONF} exists: refusing to replace a real SLURM configuration"
    return None


def _conf(tmp: Path, host: str, cpus: int, mem_mb: int) -> str:
    return f"""\
ClusterName=mydirection-test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={tmp}/munge.socket
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/slurmctld.log
SlurmdLogFile={tmp}/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/filetxt
JobCompLoc={tmp}/jobcomp.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _sbin(tool: str) -> str:
    return shutil.which(tool) or f"/usr/sbin/{tool}"


@contextmanager
def local_slurm_cluster(tmp: Path):
    """Start munged, slurmctld and slurmd; yield the environment for SLURM clients.

    Stops the daemons it started by their process ids and removes the configuration it
    wrote, whatever happens inside the block.
    """
    tmp = Path(tmp)
    (tmp / "state").mkdir(parents=True)
    (tmp / "spool").mkdir()
    host = socket.gethostname()
    mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
    conf = _conf(tmp, host, os.cpu_count() or 1, mem_mb)
    (tmp / "slurm.conf").write_text(conf)
    key = tmp / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    pids: list[int] = []
    DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
    DEFAULT_CONF.write_text(conf)
    env = {**os.environ, "SLURM_CONF": str(DEFAULT_CONF)}
    try:
        subprocess.run(
            [
                _sbin("munged"),
                f"--key-file={key}",
                f"--socket={tmp}/munge.socket",
                f"--pid-file={tmp}/munged.pid",
                f"--log-file={tmp}/munged.log",
                f"--seed-file={tmp}/munge.seed",
                "--force",
            ],
            check=True,
        )
        pids.append(_read_pid(tmp / "munged.pid"))
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([_sbin(daemon), "-f", str(DEFAULT_CONF)], check=True, env=env)
            pids.append(_read_pid(tmp / f"{daemon}.pid"))
        _wait_for_idle_node(env)
        yield env
    finally:
        for pid in reversed(pids):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in pids:
            _wait_gone(pid)
        DEFAULT_CONF.unlink(missing_ok=True)


def jobs_completed(tmp: Path) -> list[dict]:
    """The job-completion log: one dict per finished job (JobId, Name, JobState, ...)."""
    log = Path(tmp) / "jobcomp.log"
    if not log.exists():
        return []
    jobs = []
    for line in log.read_text().splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        jobs.append(fields)
    return jobs


def _read_pid(path: Path, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text().strip())
        time.sleep(0.1)
    raise RuntimeError(f"{path} did not appear: the daemon did not start (see its log)")


def _wait_for_idle_node(env: dict, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
        if out.returncode == 0 and out.stdout.strip() in {"idle", "mixed"}:
            return
        time.sleep(0.5)
    raise RuntimeError("the SLURM node did not become idle within 30 s (see slurmd.log)")


def _wait_gone(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
