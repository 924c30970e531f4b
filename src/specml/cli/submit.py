"""``specml submit``: a Slurm or HTCondor job that runs ``specml train`` under torchrun on every node.

    specml submit --scheduler slurm --nodes 2 --gpus-per-node 4 --time 02:00:00 -- train -m m.yaml -T t.yaml ...

writes a job script (and an HTCondor submit file) under ``<home>/submit/`` and hands it to ``sbatch`` /
``condor_submit`` when they are on the PATH; ``--dry-run`` prints it and writes nothing. Each node runs
torchrun with a c10d rendezvous at the first node, found from the scheduler's environment:

* Slurm: ``srun`` starts the script once per node; the rendezvous host is the first of
  ``SLURM_JOB_NODELIST`` (``scontrol show hostnames``, else expanded here), ``SLURM_NNODES`` nodes,
  ``SLURM_NODEID`` the node rank, ``SLURM_JOB_ID`` the rendezvous id.
* HTCondor (parallel universe): ``_CONDOR_PROCNO`` / ``_CONDOR_NPROCS``; node 0 publishes its host
  name with ``condor_chirp``, the others read it. ``SPECML_RDZV_HOST`` overrides the host on any scheduler.

No torch is imported here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from specml.cli.output import console, fail, user_errors

#: train options the job script sets itself
_LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint", "--max-restarts", "--background")


class Scheduler(str, Enum):
    slurm = "slurm"
    htcondor = "htcondor"


@dataclass(frozen=True)
class Job:
    """What one submission asks for."""

    name: str
    nodes: int
    gpus_per_node: int
    nproc_per_node: int
    train_args: list[str]
    directory: Path
    time: str | None = None
    partition: str | None = None
    port: int = 29400
    max_restarts: int = 0
    python: str = sys.executable

    @property
    def script(self) -> Path:
        return self.directory / f"{self.name}.sh"

    def torchrun(self, nnodes: str, node_rank: str, host: str, rdzv_id: str) -> str:
        """The torchrun command line of one node (shell variables allowed in the arguments)."""
        train = " ".join(shlex.quote(a) for a in ["-m", "specml", *self.train_args])
        return (f"{shlex.quote(self.python)} -m torch.distributed.run --nnodes={nnodes} --node-rank={node_rank} "
                f"--nproc-per-node={self.nproc_per_node} --rdzv-backend=c10d --rdzv-endpoint={host}:{self.port} "
                f"--rdzv-id={rdzv_id} --max-restarts={self.max_restarts} {train}")


def _env_block(job: Job) -> str:
    return (f"cd {shlex.quote(str(Path.cwd()))}\n"
            "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}\n"
            f"export SPECML_HOME=${{SPECML_HOME:-{shlex.quote(str(job.directory.parent))}}}\n")


def slurm_script(job: Job) -> str:
    """An sbatch script: srun runs it once per node (``--node``), each node runs torchrun."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job.name}", f"#SBATCH --nodes={job.nodes}",
             "#SBATCH --ntasks-per-node=1", f"#SBATCH --cpus-per-task={max(job.nproc_per_node, 1)}",
             f"#SBATCH --output={job.directory}/{job.name}-%j.out"]
    if job.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={job.gpus_per_node}")
    if job.time:
        lines.append(f"#SBATCH --time={job.time}")
    if job.partition:
        lines.append(f"#SBATCH --partition={job.partition}")
    py = shlex.quote(job.python)
    body = f"""
# written by `specml submit`: torchrun on every node, c10d rendezvous at the job's first node
set -euo pipefail
{_env_block(job)}
node() {{
  local host="${{SPECML_RDZV_HOST:-}}"
  if [ -z "$host" ] && command -v scontrol >/dev/null 2>&1; then
    host=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
  fi
  if [ -z "$host" ]; then
    host=$({py} -m specml.cli.submit --first-host "$SLURM_JOB_NODELIST")
  fi
  exec {job.torchrun('"$SLURM_NNODES"', '"$SLURM_NODEID"', '"$host"', '"specml-$SLURM_JOB_ID"')}
}}

if [ "${{1:-}}" = "--node" ] || ! command -v srun >/dev/null 2>&1; then
  node
fi
exec srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash {shlex.quote(str(job.script))} --node
"""
    return "\n".join(lines) + "\n" + body


def htcondor_script(job: Job) -> str:
    """The executable of each node of an HTCondor parallel-universe job."""
    return f"""#!/bin/bash
# written by `specml submit`: torchrun on every node of an HTCondor parallel-universe job
set -euo pipefail
{_env_block(job)}
rank="${{_CONDOR_PROCNO:?not inside an HTCondor parallel universe job}}"
nodes="${{_CONDOR_NPROCS:?not inside an HTCondor parallel universe job}}"
host="${{SPECML_RDZV_HOST:-}}"
if [ -z "$host" ]; then
  if [ "$rank" = "0" ]; then
    host=$(hostname -f 2>/dev/null || hostname)
    command -v condor_chirp >/dev/null 2>&1 && condor_chirp set_job_attr SpecmlRdzvHost "\\"$host\\""
  else
    for _ in $(seq 1 600); do
      host=$(condor_chirp get_job_attr SpecmlRdzvHost 2>/dev/null | tr -d '"' || true)
      [ -n "$host" ] && [ "$host" != "UNDEFINED" ] && break
      host=""; sleep 1
    done
    [ -n "$host" ] || {{ echo "node $rank: node 0 never published its host (condor_chirp)" >&2; exit 1; }}
  fi
fi
exec {job.torchrun('"$nodes"', '"$rank"', '"$host"', '"specml-${SPECML_RDZV_ID:-job}"')}
"""


def htcondor_submit(job: Job) -> str:
    """The condor_submit description: a parallel-universe job of ``nodes`` machines."""
    lines = ["universe = parallel", f"executable = {job.script}", f"machine_count = {job.nodes}",
             f"request_cpus = {max(job.nproc_per_node, 1)}", "getenv = True",
             'environment = "SPECML_RDZV_ID=$(Cluster)"', "+WantParallelSchedulingGroups = True",
             f"output = {job.directory}/{job.name}-$(Cluster).$(Node).out",
             f"error = {job.directory}/{job.name}-$(Cluster).$(Node).err",
             f"log = {job.directory}/{job.name}-$(Cluster).log"]
    if job.gpus_per_node:
        lines.append(f"request_gpus = {job.gpus_per_node}")
    if job.time:
        lines.append(f"+MaxRuntime = {_seconds(job.time)}")
    if job.partition:
        lines.append(f'requirements = (TARGET.PartitionName =?= "{job.partition}")')
    return "\n".join([*lines, "queue", ""])


def _seconds(text: str) -> int:
    """Slurm-style time (``MM``, ``HH:MM:SS``, ``D-HH:MM``...) in seconds."""
    days, _, rest = text.rpartition("-") if "-" in text else ("0", "", text)
    parts = [int(p) for p in rest.split(":")]
    if "-" in text:  # D-HH, D-HH:MM, D-HH:MM:SS
        h, m, sec = (parts + [0, 0])[:3]
    else:  # MM, MM:SS, HH:MM:SS
        h, m, sec = [0] * (3 - len(parts)) + parts if len(parts) > 1 else [0, parts[0], 0]
        if len(parts) == 2:
            h, m, sec = 0, parts[0], parts[1]
    return int(days or 0) * 86400 + h * 3600 + m * 60 + sec


_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: ``a,b`` -> ``a``; ``node[03-05,7]`` -> ``node03``."""
    head = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist.strip())
    if head is None:
        raise ValueError(f"not a Slurm node list: {nodelist!r}")
    prefix, ranges = head.group(1), head.group(3)
    return prefix if ranges is None else prefix + ranges.split(",")[0].split("-")[0]


def _train_args(args: list[str]) -> list[str]:
    if not args or args[0] != "train":
        fail("give the training command after --, e.g. specml submit --scheduler slurm --nodes 2 -- train "
             "-m model.yaml -T trainer.yaml -t table -n name")
    said = [a.split("=")[0] for a in args if a.startswith("--")]
    clash = [a for a in said if a in _LAUNCH_OPTIONS]
    if clash:
        fail(f"{', '.join(clash)}: the job script sets the processes and the rendezvous itself; use submit's "
             "--nodes, --gpus-per-node, --nproc-per-node, --max-restarts")
    # paths of files that exist now: absolute, so every node finds them from its own directory
    return [str(Path(a).resolve()) if not a.startswith("-") and Path(a).is_file() else a for a in args]


def _name_of(args: list[str]) -> str:
    for i, a in enumerate(args):
        if a in ("--name", "-n") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--name="):
            return a.split("=", 1)[1]
    return "train"


@user_errors
def submit(
    args: Annotated[list[str], typer.Argument(help="The specml command each node runs, after --: train ...")],
    scheduler: Annotated[Scheduler, typer.Option("--scheduler", help="slurm (sbatch) or htcondor (parallel "
                                                                     "universe).")],
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="Machines.")] = 1,
    gpus_per_node: Annotated[int, typer.Option("--gpus-per-node", min=0, help="GPUs per machine (0: CPU, gloo).")] = 0,
    nproc_per_node: Annotated[int | None, typer.Option("--nproc-per-node", min=1,
                                                       help="Processes per machine (default: the GPUs, or 1).")] = None,
    time: Annotated[str | None, typer.Option("--time", help="Wall-clock limit, Slurm style "
                                                            "(HH:MM:SS, D-HH:MM).")] = None,
    partition: Annotated[str | None, typer.Option("--partition", help="Slurm partition (HTCondor: a requirement on "
                                                                      "PartitionName).")] = None,
    port: Annotated[int, typer.Option("--port", help="Rendezvous port on the first node.")] = 29400,
    max_restarts: Annotated[int, typer.Option("--max-restarts", min=0, help="torchrun restarts after a worker "
                                                                           "failure (each resumes).")] = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the job script; write and submit nothing.")] = False,
) -> None:
    """Run `specml train` with torch DDP on a Slurm or HTCondor cluster (docs/distributed.md)."""
    from specml.home import specml_home

    if time is not None and not _TIME.match(time):
        fail(f"--time: expected HH:MM:SS, MM or D-HH:MM[:SS], got '{time}'")
    train_args = _train_args(args)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    job = Job(f"specml-{_name_of(train_args)}-{stamp}", nodes, gpus_per_node, nproc_per_node or max(gpus_per_node, 1),
              train_args, specml_home() / "submit", time, partition, port, max_restarts)
    files = ({job.script: slurm_script(job)} if scheduler is Scheduler.slurm else
             {job.script: htcondor_script(job), job.script.with_suffix(".sub"): htcondor_submit(job)})
    if dry_run:
        for path, text in files.items():
            typer.echo(f"# {path}\n{text}")
        return
    job.directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    job.script.chmod(0o755)
    tool, target = ("sbatch", job.script) if scheduler is Scheduler.slurm else ("condor_submit",
                                                                                job.script.with_suffix(".sub"))
    out = console()
    if shutil.which(tool) is None:
        out.print(f"wrote {target}; {tool} is not on the PATH here: submit it with `{tool} {target}`")
        return
    done = subprocess.run([tool, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{tool} {target} failed: {(done.stderr or done.stdout).strip()}")
    out.print(f"wrote {target}; {tool}: {done.stdout.strip()}")


def register(app) -> None:
    """Add ``specml submit`` to the app."""
    app.command("submit", context_settings={"allow_interspersed_args": False})(submit)


if __name__ == "__main__":  # the job scripts' fallback: python -m specml.cli.submit --first-host NODELIST
    if len(sys.argv) == 3 and sys.argv[1] == "--first-host":
        print(first_host(sys.argv[2]))
    else:
        sys.exit("usage: python -m specml.cli.submit --first-host NODELIST")
