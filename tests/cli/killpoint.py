"""Run the ``specml`` CLI and SIGKILL it at a chosen point of a training run (a test helper, not a test).

    python tests/cli/killpoint.py KIND:N specml-argument...

``KIND:N`` names the point, counted in the run (a resumed run counts on from its checkpoint):

* ``step:N``     just before the N-th optimizer step (inside an epoch, after its batches so far);
* ``best:N``     inside the write of epoch N's ``best.safetensors``, before the rename (N must improve);
* ``facts:N``    after epoch N's facts (events.jsonl, scalars.csv) are written, before its checkpoint;
* ``last:N``     inside the write of epoch N's ``last.safetensors``, before the rename;
* ``renamed:N``  after ``last.safetensors`` of epoch N is renamed into place, before the directory fsync;
* ``epoch:N``    after epoch N is committed (its checkpoint written), before anything else happens.

The process kills itself (``os.kill(os.getpid(), SIGKILL)``): no handler, no flush, no ``finally`` runs,
as when the machine loses power or the OOM killer strikes.
"""

from __future__ import annotations

import os
import signal
import sys
import types
from pathlib import Path


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kind: str, n: int) -> None:
    """Patch the function where ``kind`` strikes so that it kills this process at ``n``."""
    from specml.train.engine import Trainer

    current = {"epoch": None}
    fit_epoch = Trainer._fit_epoch

    def tracking_fit_epoch(self, *args, **kwargs):
        current["epoch"] = self.epoch
        return fit_epoch(self, *args, **kwargs)

    Trainer._fit_epoch = tracking_fit_epoch

    if kind == "step":
        step = Trainer._optimizer_step

        def killing_step(self, *args, **kwargs):
            if self.global_step + 1 == n:
                die()
            return step(self, *args, **kwargs)

        Trainer._optimizer_step = killing_step
    elif kind == "facts":
        from specml.track.facts import FactsWriter

        on_epoch_end = FactsWriter.on_epoch_end

        def killing_on_epoch_end(self, trainer, epoch, *args, **kwargs):
            on_epoch_end(self, trainer, epoch, *args, **kwargs)
            if epoch == n:
                die()

        FactsWriter.on_epoch_end = killing_on_epoch_end
    elif kind in ("best", "last", "renamed"):
        from specml.data import files

        target = "best.safetensors" if kind == "best" else "last.safetensors"

        def killing_replace(src, dst, *args, **kwargs):
            hit = Path(dst).name == target and current["epoch"] == n
            if hit and kind != "renamed":
                die()
            os.replace(src, dst, *args, **kwargs)
            if hit:
                die()

        # atomic_path calls os.replace through its module's ``os``: give it one whose replace kills
        patched = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
        patched.replace = killing_replace
        files.os = patched
    elif kind == "epoch":
        save = Trainer._save_checkpoints

        def killing_save(self, epoch, *args, **kwargs):
            save(self, epoch, *args, **kwargs)
            if epoch == n:
                die()

        Trainer._save_checkpoints = killing_save
    else:
        raise SystemExit(f"killpoint: unknown kind {kind!r} (step, best, facts, last, renamed, epoch)")


def main() -> None:
    point, *args = sys.argv[1:]
    kind, _, n = point.partition(":")
    arm(kind, int(n))
    from specml.cli.app import app

    sys.argv = ["specml", *args]
    app()


if __name__ == "__main__":
    main()
