"""The torch-side checks of a model spec: it builds, its losses resolve, and a dry forward pass runs.

The dry pass feeds a dummy batch built from the ``inputs`` shapes through the plan one node at a
time, so a shape mismatch is reported at the node where it happens, with the shapes of what flowed
in and the names of the nodes that produced them. Running twice with two batch sizes tells which
output dimensions follow the batch (shown as ``B`` by ``specml describe``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from specml.env import number
from specml.graph.allowlist import NotAllowed, resolve_loss, signature_params
from specml.graph.builder import Graph, SpecModel, Stack, Step, _Builder, _one_line, _select, _value, target_at
from specml.spec.check import Ref
from specml.spec.errors import IssueList, Loc, format_path, suggestion
from specml.spec.model import ModelSpec

PLACEHOLDER_VOCAB = 8  # categorical inputs whose vocabulary comes from the data get this size for the check
MAX_PARAMS = 500_000_000  # 2 GB of float32 weights; SPECML_MAX_PARAMS raises it


MAX_ACTIVATIONS = 2**28  # values all nodes output for the check's batch of 2 (1 GiB as float32)


def max_activations() -> int:
    return number("SPECML_MAX_ACTIVATIONS", MAX_ACTIVATIONS)


# node types whose output can outgrow their input and parameters (sizes, scales, repeats, outer products):
# a model using one gets its activations estimated on the meta device first (that pass costs a second of imports)
GROWERS = frozenset({
    "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "interpolate", "upsample", "upsample_nearest",
    "upsample_bilinear", "expand", "expand_as", "broadcast_to", "repeat", "repeat_interleave", "tile", "zeros",
    "ones", "full", "empty", "rand", "randn", "randint", "arange", "linspace", "logspace", "eye", "pad",
    "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "Unfold", "Fold", "unfold", "fold", "one_hot", "kron", "outer", "ger", "cartesian_prod",
    "combinations", "diag_embed", "diag", "diagflat", "cdist", "matmul", "bmm", "einsum", "tensordot", "baddbmm",
    "block_diag", "meshgrid", "PixelShuffle", "pixel_shuffle", "ReplicationPad1d", "ReplicationPad2d",
    "ReplicationPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ZeroPad1d", "ZeroPad2d",
    "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
})


def _may_grow(spec: ModelSpec) -> bool:
    graphs = [spec.graph, *(m.graph for m in spec.modules.values())]
    return any(node.type.rsplit(".", 1)[-1] in GROWERS for graph in graphs for node in graph)


def _numel(value: Any) -> int:
    """Values in a node's output: a tensor, or tensors nested in tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, dict):
        value = list(value.values())
    return sum(_numel(v) for v in value) if isinstance(value, list | tuple) else 0


def max_params() -> int:
    return number("SPECML_MAX_PARAMS", MAX_PARAMS)


@dataclass
class NodeReport:
    """What ``specml describe`` shows for one top-level node."""

    name: str
    type: str
    shape: str
    params: int
    placeholder: bool = False  # the parameter count uses the placeholder vocabulary size


@dataclass
class ModelCheck:
    model: SpecModel | None
    issues: IssueList
    nodes: list[NodeReport] = field(default_factory=list)
    output_shapes: dict[str, str] = field(default_factory=dict)
    #: categorical inputs whose vocabulary size comes from the data (a placeholder was used)
    placeholder_vocab: list[str] = field(default_factory=list)
    #: the outputs of the dry forward pass (batch of 2), for the dry loss call
    outputs: dict[str, Any] = field(default_factory=dict)


def _shape_of(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, list | tuple):
        return [_shape_of(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape_of(v) for k, v in value.items()}
    return type(value).__name__


def _merge(a: Any, b: Any) -> str:
    """Shapes seen at batch sizes 2 and 3 -> text with ``B`` for the batch-following dims."""
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return "[" + ", ".join("B" if x != y else str(x) for x, y in zip(a, b)) + "]"
    if isinstance(a, list) and isinstance(b, list):
        return "(" + ", ".join(_merge(x, y) for x, y in zip(a, b)) + ")"
    if isinstance(a, dict) and isinstance(b, dict):
        return "{" + ", ".join(f"{k}: {_merge(a[k], b[k])}" for k in a) + "}"
    return str(a)


def _describe_args(step: Step, args: list, kwargs: dict) -> str:
    parts = []
    flat = [*zip([None] * len(args), step.args, args), *((k, a, kwargs[k]) for k, a in step.kwargs if k in kwargs)]
    for key, arg, value in flat:
        refs = ", ".join(r.text for r in arg.refs)
        label = f"{key}=" if key else ""
        parts.append(f"{label}{refs} {_fmt_shape(_shape_of(value))}")
    return "; ".join(parts) or "no inputs"


def _fmt_shape(shape: Any) -> str:
    if isinstance(shape, tuple):
        return "[" + ", ".join(str(d) for d in shape) + "]"
    if isinstance(shape, list):
        return "(" + ", ".join(_fmt_shape(s) for s in shape) + ")"
    return str(shape)


class _Failed(Exception):
    pass


def _selection_problem(env: dict, ref: Ref) -> str | None:
    """Why ``ref``'s path cannot be followed: only tuple/list elements and dict keys can be selected."""
    value = env[ref.root]
    for i, part in enumerate(ref.path):
        so_far = ".".join([ref.root, "output", *map(str, ref.path[:i])])
        if isinstance(value, dict):
            if part not in value:
                return f"{so_far} has no element '{part}' (it has: {', '.join(map(str, value))})"
        elif isinstance(value, list | tuple):
            if not isinstance(part, int) or not -len(value) <= part < len(value):
                return f"{so_far} is a {type(value).__name__} of {len(value)} elements; '{part}' is not one of them"
        else:
            kind = "a tensor" if isinstance(value, torch.Tensor) else type(value).__name__
            return f"{so_far} is {kind}, not a tuple; there is nothing to select (write {so_far})"
        value = value[part]
    return None


def _dry_run(model: SpecModel, batch: dict, issues: IssueList | None,
             values: dict[str, Any] | None = None, sizes: list[tuple[int, Step]] | None = None) -> dict[str, Any]:
    """Run the plan once, node by node; record top-level output shapes (and the outputs in ``values``, the
    number of values every node, nested ones too, outputs in ``sizes``); report the first failure."""
    shapes: dict[str, Any] = {}

    def watch(graph: Graph, step: Step, env: dict) -> Any:
        fn = step.fn
        for arg in (*step.args, *(a for _, a in step.kwargs)):
            for ref in arg.refs:
                problem = _selection_problem(env, ref)
                if problem:
                    if issues is not None:
                        issues.add(step.loc, f"node '{step.name}' cannot read {ref.text}: {problem}")
                    raise _Failed
        args = [_value(env, a) for a in step.args]
        kwargs = {k: _value(env, a) for k, a in step.kwargs}
        try:
            if isinstance(fn, Graph):
                env = dict(zip(fn.input_names, args))
                env.update(kwargs)
                out = fn.run(env, watch)
            elif isinstance(fn, Stack):
                out = args[0] if args else next(iter(kwargs.values()))
                for block in fn.blocks:
                    out = block.run({block.input_names[0]: out}, watch)
            else:
                out = fn(*args, **kwargs, **step.const)
        except _Failed:
            raise
        except Exception as exc:
            if issues is not None:
                issues.add(step.loc, f"node '{step.name}' ({step.type}) failed in a dry forward pass on "
                                     f"{_describe_args(step, args, kwargs)}: {_one_line(exc)}")
            raise _Failed from None
        if graph is model:
            shapes[step.name] = _shape_of(out)
        if sizes is not None:
            sizes.append((_numel(out), step))
        return out

    env = model.embed(dict(batch))
    try:
        model.run_nodes(env, watch)
    except _Failed:
        return {}
    outputs = {}
    for name, ref in model.output_refs:
        problem = _selection_problem(env, ref)
        if problem:
            if issues is not None:
                issues.add(("outputs", name), f"cannot read {ref.text}: {problem}")
            return {}
        outputs[name] = _select(env, ref)
    for name, value in outputs.items():
        shapes[f"output:{name}"] = _shape_of(value)
    if values is not None:
        values.update(outputs)
    return shapes


def check_losses_torch(loss_field: Any, issues: IssueList) -> None:
    """Loss types resolve through the allow-list; their params are accepted (``loss_field``: one or a list)."""
    many = isinstance(loss_field, list)
    losses = loss_field if many else ([] if loss_field is None else [loss_field])
    for k, loss in enumerate(losses):
        loc: Loc = ("loss", k) if many else ("loss",)
        try:
            resolved = resolve_loss(loss.type)
        except NotAllowed as exc:
            issues.add((*loc, "type"), exc.message, exc.hint)
            continue
        found = target_at(loss.params, (*loc, "params"))
        if found is not None:
            issues.add(found, "_target_ is not read in a loss's params: the dict would be passed as it is",
                       "write numbers (weight: [1.0, 2.0]) or remove _target_")
            continue
        for key in ("weight", "pos_weight"):
            if key in loss.params and not _numbers(loss.params[key]):
                issues.add((*loc, "params", key), f"expected a number or a list of numbers, got "
                                                  f"{type(loss.params[key]).__name__}", f"e.g. {key}: 2.0")
        sig = signature_params(resolved.target)
        if sig is not None and not sig[1]:
            allowed = sig[0] - {"input", "target"}
            for key in loss.params:
                if key not in allowed:
                    issues.add((*loc, "params", key), f"{resolved.name} has no parameter '{key}'",
                               suggestion(key, allowed) or f"parameters: {', '.join(sorted(allowed))}")
        if resolved.kind == "module" and not any(i.loc[:len(loc)] == loc for i in issues):
            try:
                resolved.target(**loss_params(loss.params))
            except Exception as exc:
                issues.add((*loc, "params"), f"{resolved.name} failed: {_one_line(exc)}")


def _numbers(value: Any) -> bool:
    """A number or a (nested, non-empty) list of numbers: what a loss's weight tensors are made from."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, list) and bool(value) and all(_numbers(v) for v in value)


def _loss_hint(task: str, value: torch.Tensor, columns: int) -> str:
    if task == "binary" and value.shape[-1] != 1:
        return "a binary loss wants one score per row: end the graph with [B, 1] (e.g. a Linear with out_features: 1)"
    if task == "multiclass":
        return "a multiclass loss wants [B, classes] scores and class ids as the target"
    if task == "regression" and value.shape[-1] != columns:
        return f"end the graph with [B, {columns}] (one value per target column)"
    return "make the output's shape match the target, or pick the loss for this task"


def loss_params(params: dict) -> dict:
    """Loss kwargs with list/number weights turned into tensors (``pos_weight: 2.0`` as written in YAML)."""
    out = dict(params)
    for key in ("weight", "pos_weight"):
        if key in out and not isinstance(out[key], torch.Tensor):
            out[key] = torch.as_tensor(out[key], dtype=torch.float32)
    return out


def placeholder_vocab_sizes(spec: ModelSpec) -> dict[str, int]:
    """``vocab_sizes`` for :func:`build_model` without data: the check's placeholder for every categorical
    input whose spec leaves the vocabulary size to the data (what ``specml describe`` counts with)."""
    return {n: PLACEHOLDER_VOCAB for n, i in spec.inputs.items() if i.categorical and i.vocab_size is None}


def _size_issue(spec: ModelSpec, vocab_sizes: dict[str, int] | None, issues: IssueList) -> bool:
    """Build the model on the meta device (no memory) and refuse more than :func:`max_params` parameters,
    naming the largest node, or outputs beyond :func:`max_activations`. True when refused. A model that does
    not build there is left to the real build."""
    try:
        with torch.device("meta"):
            meta = _Builder(spec, dict(vocab_sizes or {}), placeholder=PLACEHOLDER_VOCAB).model()
    except Exception:  # noqa: BLE001 - the real build reports what is wrong
        return False
    if meta is None:
        return False
    total = sum(p.numel() for p in meta.parameters()) + sum(b.numel() for b in meta.buffers())
    if total <= max_params():
        return _may_grow(spec) and _activation_issue(meta, issues)
    sizes = [(sum(p.numel() for p in meta.nodes[st.name].parameters()), st) for st in meta.plan
             if st.module and isinstance(meta.nodes[st.name], nn.Module)]
    size, step = max(sizes, key=lambda x: x[0]) if sizes else (total, None)
    issues.add(step.loc if step is not None else (), f"the model would have {total:,} parameters "
               f"({total * 4 / 2**30:.1f} GiB as float32), more than the limit of {max_params():,}"
               + (f"; node '{step.name}' alone has {size:,}" if step is not None else ""),
               "set SPECML_MAX_PARAMS to allow more")
    return True


def _activation_issue(meta: SpecModel, issues: IssueList) -> bool:
    """Run the check's batch of 2 through the model on the meta device (shapes only, no memory) and refuse
    outputs of more than :func:`max_activations` values in all, naming the largest node. True when refused.
    Nodes after one the meta device cannot run (a data-dependent op, a mistake) are left to the real dry run."""
    sizes: list[tuple[int, Step]] = []
    meta.eval()  # as the real dry run: no dropout draws
    try:
        batch = {name: value.to("meta") for name, value in meta.example_inputs(batch_size=2).items()}
        _dry_run(meta, batch, None, sizes=sizes)
    except Exception:  # noqa: BLE001 - the real dry run reports what is wrong
        pass
    if not sizes:
        return False
    total = sum(n for n, _ in sizes)
    if total <= max_activations():
        return False
    size, step = max(sizes, key=lambda x: x[0])
    issues.add(step.loc, f"a batch of 2 rows would make the nodes output {total:,} values ({total * 4 / 2**30:.1f} "
                         f"GiB as float32), more than the limit of {max_activations():,}; node '{step.name}' alone "
                         f"outputs {size:,}", "set SPECML_MAX_ACTIVATIONS to allow more")
    return True


def check_model_torch(spec: ModelSpec, vocab_sizes: dict[str, int] | None = None) -> ModelCheck:
    """Build the model and run it once on a dummy batch; report everything with field paths.

    A model over the parameter or activation limit is refused after a build and a forward pass on the meta
    device, before any memory is allocated for it."""
    sized = IssueList()
    if _size_issue(spec, vocab_sizes, sized):
        return ModelCheck(None, sized)
    builder = _Builder(spec, dict(vocab_sizes or {}), placeholder=PLACEHOLDER_VOCAB)
    model = builder.model()
    issues = builder.issues
    check_losses_torch(spec.loss, issues)
    placeholder = list(builder.placeholder_used)
    estimated = {node for node, inp in builder.filled.items() if inp in placeholder}
    result = ModelCheck(model, issues, placeholder_vocab=placeholder)
    if model is None or issues:
        return result
    was_training = model.training
    model.eval()
    with torch.no_grad():
        first = _dry_run(model, model.example_inputs(batch_size=2), issues, result.outputs)
        second = _dry_run(model, model.example_inputs(batch_size=3), None) if first else {}
    model.train(was_training)
    if issues:
        result.model = None
        return result
    for step in model.plan:
        module = model.nodes[step.name] if step.module else None
        n_params = sum(p.numel() for p in module.parameters()) if isinstance(module, nn.Module) else 0
        shape = _merge(first.get(step.name), second.get(step.name, first.get(step.name)))
        result.nodes.append(NodeReport(step.name, step.type, shape, n_params, step.name in estimated))
    for name in model.output_names:
        key = f"output:{name}"
        result.output_shapes[name] = _merge(first.get(key), second.get(key, first.get(key)))
    check_loss_outputs(spec, result, issues)
    if issues:
        result.model = None
    return result


def check_loss_outputs(spec: ModelSpec, checked: ModelCheck, issues: IssueList) -> None:
    """Run each loss of ``spec`` on the dry pass's output it reads against a dummy target of the shape and
    dtype training feeds (a float per row for binary and regression, class ids for multiclass), paired
    the way training pairs them. A failure is reported at the loss's field path with the node, the loss
    and both shapes. Values are stand-ins (0.5 / class 0): only shapes and dtypes are checked."""
    from specml.spec.losses import task_of
    from specml.train.pairs import align

    many = isinstance(spec.loss, list)
    for k, loss in enumerate(spec.losses):
        loc: Loc = ("loss", k) if many else ("loss",)
        output = loss.inputs.input or next(iter(spec.outputs))
        value = checked.outputs.get(output)
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue  # a wrong output name or a non-tensor output is reported by the spec's own rules
        task = task_of(loss.type)
        columns = max(len(loss.inputs.target_columns), 1)
        batch = value.shape[0]
        if task == "multiclass":
            target = torch.zeros((batch, *value.shape[1:-1]), dtype=torch.int64)
        else:
            target = torch.zeros((batch,) if columns == 1 else (batch, columns), dtype=torch.float32)
        pred = torch.full_like(value, 0.5)
        try:
            criterion = resolve_loss(loss.type)
            fn = criterion.target(**loss_params(loss.params)) if criterion.kind == "module" else \
                (lambda p, t, _f=criterion.target: _f(p, t, **loss_params(loss.params)))
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # "different size ... broadcasting": a silent bug
                fn(*align(pred, target))
        except Exception as exc:  # noqa: BLE001 - any failure of the loss on these shapes is the user's to fix
            node = spec.outputs[output].split(".")[0]
            shown = "[B" + "".join(f", {d}" for d in target.shape[1:]) + "]"
            what = {"binary": "one 0/1 value per row", "multiclass": "one class id per row",
                    "regression": "one value per row" if columns == 1 else f"{columns} values per row"}[task]
            out_shape = checked.output_shapes.get(output, _fmt_shape(tuple(value.shape)))
            issues.add(loc, f"{loss.type} cannot compare output '{output}' (node '{node}', {out_shape}) with its "
                            f"target {shown} ({what}, {task}): {_one_line(exc)}", _loss_hint(task, value, columns))


__all__ = ["ModelCheck", "NodeReport", "check_loss_outputs", "check_losses_torch", "check_model_torch", "format_path",
           "loss_params", "placeholder_vocab_sizes"]
