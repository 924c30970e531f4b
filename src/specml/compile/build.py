"""Request + table profile -> a model spec and a trainer spec (dicts in the canonical form), with a
rationale and every choice said.

The default tabular recipe when the words do not say (documented in docs/model-from-words.md; after
RealMLP-TD, MLP-PLR and TabM):

* numeric columns: ``normalize: quantile`` (bounded, for heavy tails), then PLR embeddings
  (``specml.layers.PeriodicEmbedding``, 16 frequencies, 16 dims per column);
* categorical text columns: an embedding each (1.6 * n^0.56, 2..16 dims); identifiers whose values repeat
  (user, item, store) and repeated high-cardinality text: an embedding each (1.6 * n^0.56, 4..32 dims);
  unique identifiers and timestamps are left out;
* hidden layers: [128, 128] below 10,000 rows, [256, 256] below 1,000,000, else [512, 256, 256];
  "N layers" without sizes: N widths halving down to 32 ([128, 64, 32] for 3); ReLU;
  dropout 0.2 after each hidden layer below 10,000 rows, else 0.1
* AdamW, lr 1e-3, weight decay 1e-4 (SGD: lr 1e-2); a cosine schedule over the epochs (per epoch)
* batch 32 below 1,000 rows, 64 below 5,000, 128 below 20,000, 256 below 200,000, else 512
* epochs: about 10,000 optimizer steps, ceil(10,000 / batches per epoch) kept within 20..300; early
  stopping on val_loss with patience 16 (the best weights are restored), validation split 0.2, seed 42
* loss: BCEWithLogitsLoss (binary), CrossEntropyLoss (multiclass), MSELoss on the standardized target
  (regression, ``target_normalize: standard``); a cross network (DCN-v2) also clips gradients at norm 1
"""

from __future__ import annotations

import functools
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specml.compile.errors import CompileError
from specml.compile.profile import ColumnProfile, TableProfile
from specml.compile.target import decide_task, find_columns, find_targets
from specml.compile.words import ACTIVATIONS, LOSSES, OPTIMIZERS, Request, parse_instruction
from specml.spec.metrics import CATALOGUE

__all__ = ["MAX_CATEGORIES", "Compiled", "compile_spec", "validate_specs"]

MAX_CATEGORIES = 100  # text with more distinct values is embedded only when its values repeat (an entity)
STEPS_TARGET = 10_000  # optimizer steps the epoch budget aims at
MIN_EPOCHS, MAX_EPOCHS = 20, 300
DEFAULT_PATIENCE = 16
DEFAULT_SEED = 42
DEFAULT_LR, DEFAULT_WEIGHT_DECAY = 1e-3, 1e-4
DEFAULT_NORMALIZE = "quantile"
PLR = {"embedding_dim": 16, "frequencies": 16, "sigma": 0.3}  # PeriodicEmbedding's settings in the recipe
TABM_K = 8
DCN_CLIP = 1.0
ARCH_NAMES = {"mlp": "MLP", "dcn": "DCN-v2 (cross network + deep tower)", "mmoe": "MMoE (multi-gate mixture of experts)",
              "transformer": "feature-token transformer", "tabm": "TabM-mini (k MLPs sharing weights, averaged)"}


@dataclass
class Compiled:
    """The two specs and what was decided, with the reasons."""

    model: dict
    trainer: dict
    rationale: str
    notes: list[str]
    ignored: list[str]
    target: str | list[str]
    task: str
    tasks: dict[str, str] = field(default_factory=dict)
    architecture: str = "mlp"
    features: dict[str, list[str]] = field(default_factory=dict)  # numeric / categorical / left_out
    request: Request | None = None
    source: str = "offline"  # offline | llm

    @property
    def targets(self) -> list[str]:
        return list(self.target) if isinstance(self.target, list) else [self.target]

    def model_yaml(self) -> str:
        return _header(self) + _dump(self.model)

    def trainer_yaml(self) -> str:
        return _header(self) + _dump(self.trainer)

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``model.yaml`` and ``trainer.yaml`` into ``directory`` (atomically); their paths."""
        from specml.data.files import atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model_path, trainer_path = directory / "model.yaml", directory / "trainer.yaml"
        atomic_write_text(model_path, self.model_yaml())
        atomic_write_text(trainer_path, self.trainer_yaml())
        return model_path, trainer_path

    def to_dict(self) -> dict:
        return {"model": self.model, "trainer": self.trainer, "rationale": self.rationale, "notes": self.notes,
                "ignored": self.ignored, "target": self.target, "task": self.task, "tasks": self.tasks,
                "architecture": self.architecture, "features": self.features, "source": self.source}

    @staticmethod
    def from_dict(d: dict) -> Compiled:
        keys = ("model", "trainer", "rationale", "notes", "ignored", "target", "task", "tasks", "architecture",
                "features", "source")
        return Compiled(**{k: d[k] for k in keys if k in d})


def _dump(data: dict) -> str:
    """YAML, key order kept: top-level sections in block style, small leaf collections inline."""
    import yaml

    def dump(obj: Any, flow: bool | None) -> str:
        return yaml.safe_dump(obj, sort_keys=False, default_flow_style=flow, allow_unicode=True, width=100)

    parts = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat = not any(isinstance(v, dict | list) for v in value.values())
            body = dump(value, False if flat else None)
            parts.append(f"{key}:\n" + "".join(f"  {line}\n" for line in body.splitlines()))
        elif isinstance(value, list):
            parts.append(dump({key: value}, None))
        else:
            parts.append(dump({key: value}, False))
    return "".join(parts)


def _header(c: Compiled) -> str:
    lines = ["# Generated by `specml model` " + ("(LLM backend, validated)" if c.source == "llm" else "(offline compiler)")]
    if c.request is not None:
        text = " ".join(c.request.text.split())
        lines.append(f"# from: {text[:300]}{'...' if len(text) > 300 else ''}")
    return "\n".join(lines) + "\n"


def validate_specs(model: dict | str, trainer: dict | str) -> None:
    """Write both specs as YAML files and load them with every check (raises SpecError)."""
    from specml.spec import load_spec
    from specml.spec.yaml_io import dump_yaml

    with tempfile.TemporaryDirectory(prefix="specml-compile-") as tmp:
        mp, tp = Path(tmp) / "model.yaml", Path(tmp) / "trainer.yaml"
        mp.write_text(model if isinstance(model, str) else dump_yaml(model), encoding="utf-8")
        tp.write_text(trainer if isinstance(trainer, str) else dump_yaml(trainer), encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_spec(mp, check=True)
            load_spec(tp, check=True)


# ----------------------------------------------------------------------------------------------
# features


def _ident(name: str, used: set[str]) -> str:
    """A spec name for column ``name``: a Python identifier, not taken, and not an attribute of torch's
    ``nn.Module`` (an input or node called ``children`` or ``train`` would shadow one)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "col"
    if not re.match(r"[A-Za-z]", base):
        base = "c_" + base
    if base in _module_attributes():
        base += "_col"
    out, i = base, 2
    while out in used:
        out, i = f"{base}_{i}", i + 1
    used.add(out)
    return out


@functools.cache
def _module_attributes() -> frozenset[str]:
    from specml.graph.builder import RESERVED_NAMES  # torch: the built spec is checked with it anyway

    return frozenset(RESERVED_NAMES)


def _embedding_dim(distinct: int) -> int:
    """fastai's rule of thumb, 1.6 * n^0.56, kept between 2 and 16."""
    return int(max(2, min(16, round(1.6 * (distinct + 1) ** 0.56))))


def _entity_dim(distinct: int) -> int:
    """The same rule for identifiers (users, items): kept between 4 and 32."""
    return int(max(4, min(32, round(1.6 * (distinct + 1) ** 0.56))))


@dataclass
class _Embedded:
    """A column fed as ids through an embedding: a category, or an entity (a repeating identifier)."""

    col: ColumnProfile
    entity: bool
    dim: int = 0
    key: str = ""


def _named(req: Request, profile: TableProfile, targets: list[str], notes: list[str]) -> tuple[list[str], list[str]]:
    """The columns the words name: to embed ("user and movie embeddings"), and the only inputs ("from a and b")."""
    embed, unmatched = find_columns(req.embed, profile, targets)
    only, unmatched_inputs = find_columns(req.inputs, profile, targets)
    for phrase in unmatched:
        notes.append(f"'{phrase} embeddings': no column of table '{profile.table}' is named like '{phrase}'")
    for phrase in unmatched_inputs:
        notes.append(f"'from {phrase}': no column of table '{profile.table}' is named like '{phrase}'; "
                     "not used to choose the inputs")
    return embed, only


def _features(profile: TableProfile, targets: list[str], leaks: dict[str, str], notes: list[str],
              embed: list[str] = (), only: list[str] = ()) -> tuple[list[ColumnProfile], list[_Embedded], list[str]]:
    """numeric columns, embedded columns (categories and entities) and left-out column names, each decision
    in ``notes`` (see :meth:`ColumnProfile.role`)."""
    numeric: list[ColumnProfile] = []
    embedded: list[_Embedded] = []
    left_out: list[str] = []
    for col in profile.columns:
        if col.name in targets:
            continue
        why = None
        role = col.role(profile.rows, MAX_CATEGORIES)
        named = col.name in embed or col.name in only
        as_ids = role == "entity" or col.name in embed or (named and col.id_like)  # embedded as an entity
        if only and col.name not in only:
            why = f"not among the columns the words name ({', '.join(only)})"
        elif col.name in leaks:
            why = f"leakage suspect: {leaks[col.name]}"
        elif col.constant:
            why = "constant" if col.distinct == 1 else "always NULL"
        elif role == "timestamp":
            why = ("a date/time (not a model input; a plan uses it for a time-ordered split)" if col.kind == "temporal"
                   else "a timestamp (named like a time, epoch or yyyymmdd values): not fed as a raw number")
        elif role == "identifier" and not named:
            why = "looks like an identifier (its values do not repeat)"
        elif col.kind == "other":
            why = f"type {col.type} is not a tabular input"
        elif col.numeric and col.nulls and not as_ids:
            why = f"{col.nulls} NULL value(s): training refuses them; impute or filter first (specml sql)"
        elif col.kind == "string" and col.distinct > MAX_CATEGORIES and role != "entity" and not named:
            why = f"text with {col.distinct} distinct values that hardly repeat (more than {MAX_CATEGORIES} to embed)"
        if why:
            left_out.append(col.name)
            notes.append(f"left out '{col.name}': {why}")
        elif as_ids:
            embedded.append(_Embedded(col, entity=True))
            if role == "identifier":
                notes.append(f"'{col.name}' is embedded as the words ask, but its values do not repeat: "
                             "an embedding learns little that carries over to new rows")
        elif col.numeric:
            numeric.append(col)
        else:
            embedded.append(_Embedded(col, entity=False))
    if not numeric and not embedded:
        raise CompileError(f"table '{profile.table}' has no usable input column besides the target "
                           f"({', '.join(targets)}); left out: {', '.join(left_out) or 'none'}")
    return numeric, embedded, left_out


# ----------------------------------------------------------------------------------------------
# graph pieces


class _Graph:
    def __init__(self, used: set[str]):
        self.nodes: list[dict] = []
        self.used = used

    def add(self, name: str, type_: str, inputs: Any, params: dict | None = None) -> str:
        name = _ident(name, self.used)
        node: dict[str, Any] = {"name": name, "type": type_}
        if params:
            node["params"] = params
        node["inputs"] = inputs
        self.nodes.append(node)
        return name

    def mlp(self, x: str, width: int, sizes: list[int], dropouts: list[float], act: str, prefix: str = "") -> tuple[str, int]:
        for i, (h, p) in enumerate(zip(sizes, dropouts), start=1):
            lin = self.add(f"{prefix}hidden{i}", "torch.nn.Linear", {"input": x}, {"in_features": width, "out_features": h})
            x = self.add(f"{prefix}act{i}", ACTIVATIONS[act], {"input": f"{lin}.output"})
            x = f"{x}.output"
            if p > 0:
                x = f"{self.add(f'{prefix}dropout{i}', 'torch.nn.Dropout', {'input': x}, {'p': p})}.output"
            width = h
        return x, width


def _hidden_sizes(req: Request, rows: int, notes: list[str]) -> tuple[list[int], bool]:
    if req.hidden:
        return list(req.hidden), True
    if req.hidden_count:
        n = req.hidden_count
        sizes = [64] if n == 1 else [32 * 2 ** (n - 1 - i) for i in range(n)]
        notes.append(f"{n} layer(s) without sizes: read as {n} hidden layer(s) {sizes}")
        return sizes, True
    return ([128, 128] if rows < 10_000 else [256, 256] if rows < 1_000_000 else [512, 256, 256]), False


def _default_batch(rows: int) -> int:
    return 32 if rows < 1_000 else 64 if rows < 5_000 else 128 if rows < 20_000 else 256 if rows < 200_000 else 512


def _default_epochs(train_rows: int, batch: int) -> int:
    """About STEPS_TARGET optimizer steps, kept within MIN_EPOCHS..MAX_EPOCHS."""
    steps = max(1, -(-train_rows // batch))
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, -(-STEPS_TARGET // steps))))


# ----------------------------------------------------------------------------------------------


def compile_spec(instruction: str | Request, profile: TableProfile, *, name: str | None = None,
                 validate: bool = True) -> Compiled:
    """Compile an instruction against a table profile into validated specs (raises CompileError / SpecError)."""
    req = instruction if isinstance(instruction, Request) else parse_instruction(instruction)
    notes = list(req.notes)
    said: list[str] = []  # pieces of the rationale
    if req.table_ref and req.table_ref.lower() != profile.table.lower():
        notes.append(f"the words name table '{req.table_ref}', but the specs are compiled for table '{profile.table}'")

    # -- target(s) and task ---------------------------------------------------------------------
    hint = None if req.task == "multi" else req.task
    choices = find_targets(req.targets, profile, hint)
    targets = [c.column for c in choices]
    for c in choices:
        if c.phrase is None:
            notes.append(c.reason)
    tasks: dict[str, str] = {}
    task_why: list[str] = []
    for col in targets:
        task, why = decide_task(profile.column(col), hint if len(targets) == 1 else None)
        tasks[col], _ = task, task_why.append(why)
        if hint == "binary" and task != "binary":
            notes.append(f"asked for a binary classifier, but {why}")
    if len(targets) == 1:
        overall = tasks[targets[0]]
    else:
        overall = "multi-output regression" if all(t == "regression" for t in tasks.values()) else "multi-task"
    if req.class_names and len(targets) == 1 and tasks[targets[0]] != "regression":
        counts = profile.value_counts(targets[0], limit=MAX_CATEGORIES)
        if counts is not None:
            values = {str(v).lower() for v, _ in counts}
            missing = [c for c in req.class_names if c.lower() not in values and _singular_any(c) not in values]
            if missing:
                notes.append(f"classes named in the words but not found in '{targets[0]}': {', '.join(missing)}")

    # -- inputs ---------------------------------------------------------------------------------
    leaks = {s.column: s.reason for s in profile.leakage(targets)}
    embed, only = _named(req, profile, targets, notes)
    numeric, embedded, left_out = _features(profile, targets, leaks, notes, embed, only)
    n_features = len(numeric) + len(embedded)
    if req.input_features and req.input_features != n_features:
        notes.append(f"the words say {req.input_features} input features; the table gives {n_features} usable "
                     f"columns, and the spec uses those")

    arch = req.architecture or "mlp"
    if arch == "mmoe" and len(targets) < 2:
        notes.append("MMoE shares experts between several targets; with one target an MLP is used")
        arch = "mlp"
    if arch == "tabm" and len(targets) > 1:
        notes.append("TabM-mini is built here for one target; with several targets an MLP with one head each is used")
        arch = "mlp"

    sizes, sizes_said = _hidden_sizes(req, profile.rows, notes)
    dropouts = req.dropouts(len(sizes))
    dropout_said = dropouts is not None
    if dropouts is None:
        dropouts = [0.2 if profile.rows < 10_000 else 0.1] * len(sizes)
    for i in req.dropout_at:
        if i >= len(sizes):
            notes.append(f"dropout for hidden layer {i + 1}: there are only {len(sizes)} hidden layers")
    act = req.activation or "relu"

    used: set[str] = set()
    inputs: dict[str, dict] = {}
    transformer_dim = sizes[0] if (arch == "transformer" and sizes_said) else 32
    normalize = req.normalize or DEFAULT_NORMALIZE
    plr = bool(numeric) and arch != "transformer" and req.numeric_embedding is not False
    if req.numeric_embedding and arch == "transformer":
        notes.append("numeric embeddings: the transformer makes its own token of each numeric column; no PLR layer")
    if numeric:
        inputs[_ident("features", used)] = {
            "dtype": "float32", "shape": [None, len(numeric)], "columns": [c.name for c in numeric],
            "normalize": normalize}
    for e in embedded:
        rule = _entity_dim if e.entity else _embedding_dim
        e.dim = transformer_dim if arch == "transformer" else (req.embedding_dim or rule(e.col.distinct))
        e.key = _ident(e.col.name, used)
        inputs[e.key] = {"dtype": "int64", "shape": [None], "columns": [e.col.name], "categorical": True,
                         "embedding_dim": e.dim}
    cat_inputs = [(e.key, e.dim) for e in embedded]

    g = _Graph(used)
    out_units = {}
    for col in targets:
        out_units[col] = 1 if tasks[col] in ("binary", "regression") else profile.column(col).distinct
    if req.output_units and len(targets) == 1 and req.output_units != out_units[targets[0]]:
        notes.append(f"the words ask for {req.output_units} output unit(s); a {tasks[targets[0]]} target "
                     f"'{targets[0]}' needs {out_units[targets[0]]}, which the spec uses")

    # x0: every input as one [B, width] tensor (transformer: tokens instead)
    tabm_head: str | None = None
    if arch == "transformer":
        trunk, width, arch_said = _transformer(g, inputs, numeric, cat_inputs, transformer_dim, req, sizes, dropouts)
    else:
        parts = [k for k, _ in cat_inputs]
        width = sum(d for _, d in cat_inputs)
        if numeric:
            feats = next(iter(inputs))
            if plr:
                emb = g.add("numeric_embedding", "specml.layers.PeriodicEmbedding", {"input": feats},
                            {"in_features": len(numeric), **PLR})
                parts.insert(0, f"{emb}.output")
                width += len(numeric) * PLR["embedding_dim"]
            else:
                parts.insert(0, feats)
                width += len(numeric)
        x0 = parts[0] if len(parts) == 1 else \
            f"{g.add('inputs_joined', 'specml.layers.Concat', parts, {'dim': 1})}.output"
        if arch == "dcn":
            cross = g.add("cross", "specml.layers.CrossNetwork", {"input": x0},
                          {"in_features": width, "num_layers": 3, "version": "v2"})
            deep, deep_w = g.mlp(x0, width, sizes, dropouts, act, prefix="deep_")
            trunk = f"{g.add('cross_deep', 'specml.layers.Concat', [f'{cross}.output', deep], {'dim': 1})}.output"
            width = width + deep_w
            arch_said = (f"a 3-layer cross network and a deep tower {sizes} in parallel, concatenated "
                         f"({width} features) before the head")
        elif arch == "mmoe":
            trunk, arch_said = None, ""  # the experts take x0 (below)
        elif arch == "tabm":
            trunk = x0
            col = targets[0]
            tabm_head = g.add("head", "specml.layers.BatchEnsembleMLP", {"input": x0},
                              {"in_features": width, "hidden": sizes, "out_features": out_units[col], "k": TABM_K,
                               "dropout": dropouts[0] if dropouts else 0.0})
            arch_said = (f"{TABM_K} MLPs {sizes} sharing their weights (rank-1 input adapters), predictions "
                         "averaged")
        else:
            trunk, width = g.mlp(x0, width, sizes, dropouts, act)
            arch_said = f"hidden layers {sizes}"

    # heads
    outputs: dict[str, str] = {}
    losses: list[dict] = []
    multi = len(targets) > 1
    if arch == "mmoe":
        experts = req.num_experts or 4
        expert_hidden = sizes[0]
        tower = sizes[1] if len(sizes) > 1 else max(8, expert_hidden // 2)
        mmoe = g.add("mmoe", "specml.layers.MMoE", {"input": x0},
                     {"in_features": width, "num_experts": experts, "expert_hidden": expert_hidden,
                      "num_tasks": len(targets)})
        arch_said = (f"{experts} shared experts of width {expert_hidden}, one gate and one tower "
                     f"[{tower}] per target")
        heads = {}
        for t, col in enumerate(targets):
            x, w = g.mlp(f"{mmoe}.output.{t}", expert_hidden, [tower], [dropouts[0] if dropouts else 0.0], act,
                         prefix=f"{_ident(col, set())}_tower_")
            heads[col] = (x, w)
    else:
        heads = {col: (trunk, width) for col in targets}
    loss_key = req.loss
    if loss_key and any(LOSSES[loss_key][1] != tasks[c] for c in targets):
        notes.append(f"loss {LOSSES[loss_key][0]} does not fit a {overall} target; using the usual loss instead")
        loss_key = None
    if req.output_activation:
        expected = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
        for col in targets:
            if req.output_activation != expected[tasks[col]]:
                notes.append(f"output {req.output_activation}: a {tasks[col]} target uses a "
                             f"{expected[tasks[col]]} output; the spec uses that")
    loss_names = []
    for col in targets:
        x, w = heads[col]
        prefix = f"{_ident(col, set())}_" if multi else ""
        head = tabm_head or g.add(f"{prefix}head", "torch.nn.Linear", {"input": x},
                                  {"in_features": w, "out_features": out_units[col]})
        task = tasks[col]
        logits_name = f"{prefix}logits" if task != "regression" else f"{prefix}prediction"
        outputs[logits_name] = f"{head}.output"
        loss_input = logits_name
        if task == "binary":
            prob = g.add(f"{prefix}probability", "torch.sigmoid", {"input": f"{head}.output"})
            outputs[f"{prefix}prediction"] = f"{prob}.output"
            loss_type = "torch.nn.BCEWithLogitsLoss"
            if loss_key == "bce":
                loss_type, loss_input = "torch.nn.BCELoss", f"{prefix}prediction"
        elif task == "multiclass":
            prob = g.add(f"{prefix}probability", "torch.softmax", {"input": f"{head}.output"}, {"dim": -1})
            outputs[f"{prefix}prediction"] = f"{prob}.output"
            loss_type = "torch.nn.CrossEntropyLoss"
        else:
            loss_type = LOSSES[loss_key][0] if loss_key else "torch.nn.MSELoss"
        loss: dict[str, Any] = {"type": loss_type, "inputs": {"input": loss_input, "target": col}}
        if task == "regression":
            loss["target_normalize"] = "standard"
        if multi:
            loss = {"name": _ident(col, set()), **loss, "weight": 1.0}
        losses.append(loss)
        loss_names.append(loss_type.rsplit(".", 1)[-1])

    model_name = name or "-".join(_ident(c, set()) for c in targets)
    description = " ".join(req.text.split())
    model = {"version": 1, "name": model_name,
             "description": (description[:200] + "...") if len(description) > 200 else description,
             "inputs": inputs, "graph": g.nodes, "outputs": outputs,
             "loss": losses if multi else losses[0]}

    # -- trainer --------------------------------------------------------------------------------
    trainer, trainer_said = _trainer(req, profile.rows, model_name, overall, tasks, notes, arch)

    # -- rationale ------------------------------------------------------------------------------
    target_words = "; ".join(f"'{c.column}' ({c.reason})" if c.phrase else f"'{c.column}'" for c in choices)
    inputs_said = []
    if numeric:
        how = {"quantile": "quantile-normalized (mapped to a normal through the training rows' quantiles)",
               "robust": "robust-scaled (median/IQR, smoothly clipped to ±3)", "standard": "standardized"}[normalize]
        inputs_said.append(f"{len(numeric)} numeric column(s) {how}{'' if req.normalize else ' (default)'}"
                           + (f", each embedded by PLR (periodic features, {PLR['frequencies']} frequencies, "
                              f"{PLR['embedding_dim']} dims)" if plr else ", fed as they are"))
    categories = [e for e in embedded if not e.entity]
    entities = [e for e in embedded if e.entity]
    if categories:
        inputs_said.append(f"{len(categories)} text/categorical column(s) embedded "
                           f"({', '.join(f'{e.col.name}: {e.dim}' for e in categories)})")
    if entities:
        each = ", ".join(f"{e.col.name}: {e.col.distinct} values, {e.dim} dims" for e in entities)
        inputs_said.append(f"{len(entities)} identifier column(s) embedded, vocabulary from the training rows, "
                           f"unseen values -> id 0 ({each})")
    if left_out:
        inputs_said.append(f"left out: {', '.join(left_out)}")
    drop_text = ("no dropout" if not any(dropouts) else
                 f"dropout {dropouts[0]:g}" if len(set(dropouts)) == 1 else f"dropout {dropouts}")
    said.append(f"Target {target_words}: {'; '.join(task_why)}.")
    said.append(f"Inputs: {'; '.join(inputs_said)}.")
    rows = format(profile.rows, ",")
    reg = [c for c in targets if tasks[c] == "regression"]
    said.append(f"Architecture: {'MLP' if arch == 'mlp' else ARCH_NAMES[arch]}: {arch_said}"
                f"{'' if sizes_said else f' (sizes: default for {rows} rows)'}, {act} activations, "
                f"{drop_text}{'' if dropout_said else f' (default for {rows} rows)'}; "
                f"loss {', '.join(dict.fromkeys(loss_names))}"
                + (" on the standardized target (mean/std of the training rows; predictions in its own units)"
                   if reg else "") + ".")
    said.append(trainer_said)
    if multi and arch != "mmoe":
        said.append("One shared trunk, one head and one loss per target.")
    rationale = " ".join(said)

    compiled = Compiled(model=model, trainer=trainer, rationale=rationale, notes=notes, ignored=list(req.ignored),
                        target=targets[0] if len(targets) == 1 else targets, task=overall, tasks=tasks,
                        architecture=arch,
                        features={"numeric": [c.name for c in numeric],
                                  "categorical": [e.col.name for e in categories],
                                  "embedded_ids": [e.col.name for e in entities], "left_out": left_out},
                        request=req)
    if validate:
        validate_specs(model, trainer)
    return compiled


def _singular_any(word: str) -> str:
    w = word.lower()
    return w.removesuffix("s")


def _transformer(g: _Graph, inputs: dict, numeric: list, cat_inputs: list[tuple[str, int]], d: int, req: Request,
                 sizes: list[int], dropouts: list[float]) -> tuple[str, int, str]:
    """Each numeric column becomes a token (a learned projection of its value), each categorical
    column its embedding; a TransformerEncoder mixes the tokens; their mean feeds the head."""
    tokens = []
    if numeric:
        feats = next(iter(inputs))
        col = g.add("feature_values", "torch.unsqueeze", {"input": feats}, {"dim": -1})
        tokens.append(f"{g.add('feature_tokens', 'torch.nn.Linear', {'input': f'{col}.output'}, {'in_features': 1, 'out_features': d})}.output")
    for key, _ in cat_inputs:
        tokens.append(f"{g.add(f'{key}_token', 'torch.unsqueeze', {'input': key}, {'dim': 1})}.output")
    seq = tokens[0] if len(tokens) == 1 else f"{g.add('tokens', 'torch.cat', tokens, {'dim': 1})}.output"
    heads = 4 if d % 4 == 0 else 2 if d % 2 == 0 else 1
    layers = req.hidden_count or 2
    p = dropouts[0] if dropouts else 0.1
    enc = g.add("encoder", "torch.nn.TransformerEncoder", {"input": seq},
                {"encoder_layer": {"_target_": "torch.nn.TransformerEncoderLayer", "d_model": d, "nhead": heads,
                                   "dim_feedforward": 2 * d, "dropout": p, "batch_first": True},
                 "num_layers": layers})
    pooled = g.add("pooled", "torch.mean", {"input": f"{enc}.output"}, {"dim": 1})
    said = (f"each column is a token of width {d}; a {layers}-layer TransformerEncoder ({heads} heads) mixes them "
            "and their mean feeds the head")
    return f"{pooled}.output", d, said


def _trainer(req: Request, rows: int, model_name: str, overall: str, tasks: dict[str, str],
             notes: list[str], arch: str = "mlp") -> tuple[dict, str]:
    opt = req.optimizer or "adamw"
    if req.momentum is not None and req.optimizer is None:
        opt = "sgd"
        notes.append("momentum without an optimizer: using SGD with momentum")
    lr = req.lr if req.lr is not None else (0.01 if opt == "sgd" else DEFAULT_LR)
    params: dict[str, Any] = {}
    if req.momentum is not None:
        if opt in ("sgd", "rmsprop"):
            params["momentum"] = req.momentum
            if req.nesterov and opt == "sgd":
                params["nesterov"] = True
        else:
            notes.append(f"momentum applies to SGD/RMSprop, not {opt}; left out")
    if req.weight_decay is not None:
        params["weight_decay"] = req.weight_decay
    elif opt == "adamw":
        params["weight_decay"] = DEFAULT_WEIGHT_DECAY
    optimizer: dict[str, Any] = {"type": OPTIMIZERS[opt], "lr": lr}
    if params:
        optimizer["params"] = params
    batch = req.batch_size or _default_batch(rows)
    split = req.validation_split if req.validation_split is not None else 0.2
    train_rows = max(1, int(rows * (1 - split)))
    epochs = req.epochs or _default_epochs(train_rows, batch)
    patience = None if req.early_stopping is False else (req.patience or DEFAULT_PATIENCE)
    config: dict[str, Any] = {"epochs": epochs, "batch_size": batch, "validation_split": split, "shuffle": True}
    single = next(iter(tasks.values())) if len(tasks) == 1 else None
    if single:
        config["metrics"] = list(CATALOGUE[single].compiled)
    config["early_stopping_patience"] = patience
    if patience:
        config["early_stopping_monitor"] = "val_loss" if split > 0 else "train_loss"
        config["early_stopping_min_delta"] = 0.0  # any improvement counts: losses of scaled targets are small
    clip = req.gradient_clip_norm or (DCN_CLIP if arch == "dcn" else None)
    if clip:
        config["gradient_clip_norm"] = clip
    config["device"] = "auto"
    config["seed"] = req.seed if req.seed is not None else DEFAULT_SEED
    trainer: dict[str, Any] = {"model_ref": model_name, "optimizer": optimizer}
    cosine = req.schedule is not False and epochs > 1
    if cosine:
        trainer["scheduler"] = {"type": "CosineAnnealingLR", "params": {"T_max": epochs}, "interval": "epoch"}
    trainer["config"] = config

    d = lambda said: "" if said else " (default)"
    patience_said = "" if req.patience else ", default"
    steps = -(-train_rows // batch)
    epochs_why = ("" if req.epochs else
                  f" (default: about {STEPS_TARGET:,} steps at {steps} batch(es) per epoch, kept within "
                  f"{MIN_EPOCHS}..{MAX_EPOCHS})")
    text = (f"Training: {OPTIMIZERS[opt].rsplit('.', 1)[-1]}{d(req.optimizer or req.momentum is not None)} "
            f"lr {lr:g}{d(req.lr is not None)}"
            + (f", {', '.join(f'{k} {v}' for k, v in params.items())}" if params else "")
            + (f"{d(req.weight_decay is not None)}" if "weight_decay" in params else "")
            + (f", cosine schedule to 0 over {epochs} epochs{d(req.schedule)}" if cosine else ", constant lr")
            + f", batch {batch}{d(req.batch_size)}, up to {epochs} epochs{epochs_why}"
            + (f" with early stopping on {config['early_stopping_monitor']} (patience {patience}{patience_said}, "
               "any improvement counts; the best epoch's weights are kept)" if patience else ", no early stopping")
            + (f", gradients clipped at norm {clip:g}" + ("" if req.gradient_clip_norm else
                                                         " (default for a cross network)") if clip else "")
            + f", {split:g} validation split, seed {config['seed']}.")
    return trainer, text
