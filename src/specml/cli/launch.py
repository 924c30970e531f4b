"""Start ``specml train`` under torchrun (``torch.distributed.run``): one machine or several.

    specml train ... --nproc 2                         # 2 processes here, on 127.0.0.1 and a free port
    specml train ... --nproc 4 --nnodes 2 --node-rank 0 --rdzv-endpoint host:29400   # on each node

No torch is imported here: the child processes import it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from specml.errors import SpecmlError


class LaunchError(SpecmlError):
    """A launcher option that cannot work."""


@dataclass(frozen=True)
class Launch:
    """How many processes, on how many nodes, meeting where."""

    nproc: int
    nnodes: int = 1
    node_rank: int | None = None
    rdzv_endpoint: str | None = None
    rdzv_id: str = "specml"
    max_restarts: int = 0

    def check(self) -> Launch:
        if self.nproc < 1:
            raise LaunchError(f"--nproc must be at least 1, got {self.nproc}")
        if self.nnodes < 1:
            raise LaunchError(f"--nnodes must be at least 1, got {self.nnodes}")
        if self.max_restarts < 0:
            raise LaunchError(f"--max-restarts must be 0 or more, got {self.max_restarts}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise LaunchError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
        if self.rdzv_endpoint is not None:
            host, _, port = self.rdzv_endpoint.rpartition(":")
            if not host or not port.isdigit():
                raise LaunchError(f"--rdzv-endpoint must be HOST:PORT, got '{self.rdzv_endpoint}'")
        if self.node_rank is not None and not 0 <= self.node_rank < self.nnodes:
            raise LaunchError(f"--node-rank must be in 0..{self.nnodes - 1}, got {self.node_rank}")
        return self

    def torchrun_args(self) -> list[str]:
        """torchrun's own options: a standalone single-node group on 127.0.0.1, or a c10d rendezvous."""
        args = [f"--nproc-per-node={self.nproc}", f"--max-restarts={self.max_restarts}"]
        if self.rdzv_endpoint is None:
            # c10d on loopback with a port free now: several launches on one machine never collide
            args += ["--nnodes=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}",
                     f"--rdzv-id={self.rdzv_id}"]
        else:
            args += [f"--nnodes={self.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={self.rdzv_endpoint}",
                     f"--rdzv-id={self.rdzv_id}"]
            if self.node_rank is not None:
                args.append(f"--node-rank={self.node_rank}")
        return args


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(launch: Launch, specml_args: list[str]) -> list[str]:
    """The full command line: ``python -m torch.distributed.run <torchrun options> -m specml <args>``."""
    return [sys.executable, "-m", "torch.distributed.run", *launch.torchrun_args(), "-m", "specml", *specml_args]


def run(launch: Launch, specml_args: list[str]) -> int:
    """Run the group in the foreground; its exit status. Children get ``OMP_NUM_THREADS=1`` unless set."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(command(launch.check(), specml_args), env=env)
