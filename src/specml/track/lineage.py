"""Lineage: which specs, table and data trained a model, run by run, and its evaluations."""

from __future__ import annotations

from typing import Any

from specml.spec.errors import suggestion
from specml.track.store import RegistryError
from specml.track.tables.runs import RunTable
from specml.track.tables.specs import SpecTable


def lineage(runs: RunTable, specs: SpecTable, model_name: str) -> dict[str, Any]:
    """``{"model", "runs": [run row + spec currency], "evaluations": [...]}`` for a trained model's name.

    Per run, ``model_spec_current`` / ``trainer_spec_current`` say whether the spec hash the run used
    is still the registered version of that name (None for specs trained from files, not by name);
    the exact texts are in the run directory (``run_dir``).
    """
    rows = runs.list(model_name)
    evaluations = runs.list_evaluations(model_name)
    if not rows and not evaluations:
        names = runs.names()
        hint = suggestion(model_name, names) or (f"models with runs: {', '.join(names)}" if names and
                                                 len(names) <= 10 else "runs are recorded by specml train")
        raise RegistryError(f"no runs recorded for model '{model_name}' ({hint})")
    out = []
    for run in rows:
        item = run.to_dict()
        m = specs.find_model(run.model_spec_name) if run.model_spec_name else None
        t = specs.find_trainer(run.trainer_spec_name) if run.trainer_spec_name else None
        item["model_spec_current"] = None if m is None else m.spec_hash == run.model_spec_hash
        item["trainer_spec_current"] = None if t is None else t.spec_hash == run.trainer_spec_hash
        item["trainer_model_ref"] = None if t is None else t.model_ref
        out.append(item)
    return {"model": model_name, "runs": out, "evaluations": [e.to_dict() for e in evaluations]}
