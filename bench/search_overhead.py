"""The cost of search per trial: a ``specml tune`` trial against the same training run alone.

Per round, interleaved, the same configuration (the Pima example MLP, its trainer spec with
``--epochs`` epochs, the overrides a trial would get, on the Pima rows repeated ``--copies`` times) is
trained twice in this process:

* alone: ``specml.api.train(..., overrides=[...])``;
* as a trial: ``study.ask()``, then :func:`specml.search.trial.run_trial` (the same ``api.train`` plus
  the pruning callback reporting to Optuna after every epoch and asking whether to prune, the trial's
  attributes, ``study.tell``, the TensorBoard hparams summary), on an Optuna SQLite study in the home.

Both are tracked runs (run directory, facts, figures, registry). Every trial samples the same single
value, so the median pruner never stops one. Prints the median and the best wall time (and CPU time,
steadier on a busy machine) of each and the ratios trial / alone (target <= 1.05). One warm-up round of
each first (imports, first-time set-up).

    .venv/bin/python bench/search_overhead.py --rounds 9 --epochs 20 --copies 10

A trial adds a fixed cost (ask, tell, its attributes, the hparams summary: tens of ms) and, per epoch,
one report to the storage (and, once the pruner can prune, one pruning query): about 10 ms with
SQLite. ``--copies 1`` shows that worst case: epochs of a few ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pima_mlp"
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--copies", type=int, default=10,
                        help="the Pima rows repeated this many times (1: the 768 rows, epochs of a few ms)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    home = Path(tempfile.mkdtemp(prefix="specml-bench-search-"))
    os.environ["SPECML_HOME"] = str(home)
    os.environ.pop("SPECML_WORKSPACE", None)

    import optuna
    import pyarrow as pa

    from specml import api
    from specml.data.workspace import Workspace
    from specml.search.space import Space, parse_space
    from specml.search.study import TuneSettings, open_study
    from specml.search.trial import run_trial

    with Workspace() as ws:
        ws.load(PIMA, "pima_once")
        ws.write_table("pima", pa.concat_tables([ws.sql("SELECT * FROM pima_once")] * args.copies))
    space: Space = parse_space({"params": {"trainer.optimizer.lr": [0.001]}})
    fixed = [f"trainer.config.epochs={args.epochs}", "trainer.config.early_stopping_patience=null",
             "trainer.config.tensorboard=false"]
    settings = TuneSettings(study="bench", table="pima", space="-", model_spec=str(EXAMPLE / "model.yaml"),
                            trainer_spec=str(EXAMPLE / "trainer.yaml"), trials=10**6, overrides=fixed,
                            metric="val_loss", direction="minimize", pruner="median", home=str(home))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(settings, space, create=True)
    same = [*fixed, *space.overrides({"trainer.optimizer.lr": 0.001})]

    def alone(i: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        api.train(settings.model_spec, settings.trainer_spec, table="pima", name=f"alone-{i}", verbose=False,
                  progress=False, overrides=same)
        return time.perf_counter() - t0, time.process_time() - c0

    def trial(i: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = run_trial(study, study.ask(), settings, space)
        elapsed = time.perf_counter() - t0, time.process_time() - c0
        assert outcome.state == "complete", outcome
        return elapsed

    try:
        report(args, alone, trial)
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)


def report(args, alone, trial) -> None:
    """Warm up, run the interleaved rounds, print each round and the median and best ratios."""
    alone(-1), trial(-1)   # warm-up: imports, first study writes, the TensorBoard writer
    times: dict[str, list[tuple[float, float]]] = {"alone": [], "trial": []}
    for i in range(args.rounds):
        for name, fn in (("alone", alone), ("trial", trial)) if i % 2 == 0 else (("trial", trial), ("alone", alone)):
            times[name].append(fn(i))
        (aw, ac), (tw, tc) = times["alone"][-1], times["trial"][-1]
        print(f"round {i + 1}: alone {aw:.3f} s ({ac:.3f} s CPU), trial {tw:.3f} s ({tc:.3f} s CPU)", flush=True)
    for label, pick in (("median", statistics.median), ("best", min)):
        a, t = (pick(w for w, _ in times[k]) for k in ("alone", "trial"))
        ac, tc = (pick(c for _, c in times[k]) for k in ("alone", "trial"))
        print(f"{label} of {args.rounds} rounds ({768 * args.copies} rows, {args.epochs} epochs): alone {a:.3f} s "
              f"({ac:.3f} s CPU), trial {t:.3f} s ({tc:.3f} s CPU): trial / alone = {t / a:.3f} wall, "
              f"{tc / ac:.3f} CPU (target <= 1.05); {(t - a) / args.epochs * 1000:+.1f} ms per epoch")


if __name__ == "__main__":
    main()
