"""Cross-field rules of a model spec that need no torch: names, references, the DAG, loss wiring.

Everything here reports a field path. The torch-side checks (allow-list, constructor params, a dry
forward pass) are in :mod:`specml.graph.check` and run after these pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from specml.spec.errors import IssueList, Loc, format_path, suggestion
from specml.spec.model import INTEGER_DTYPES, ModelSpec, NodeSpec

MAX_STACK = 1000  # arc.stack copies of one module
MAX_BLOCKS = 10_000  # arc.stack blocks in one model, nested stacks multiplied

STACK = "arc.stack"
MODULE_PREFIX = "module."


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``root`` (an input or node name) and the ``path`` after ``.output``."""

    root: str
    path: tuple[str | int, ...] = ()
    text: str = ""


def parse_ref(text: str) -> Ref:
    """``x`` | ``node`` | ``node.output`` | ``node.output.0`` | ``node.output.1.0`` | ``node.output.name``."""
    parts = text.split(".")
    root = parts[0]
    rest = parts[1:]
    if rest and rest[0] == "output":
        rest = rest[1:]
    elif rest:
        raise ValueError(f"after '{root}.' a reference continues with 'output' (e.g. '{root}.output')")
    path = tuple(int(p) if p.lstrip("-").isdigit() else p for p in rest)
    if any(p == "" for p in path) or root == "":
        raise ValueError("empty part in reference")
    return Ref(root, path, text)


def node_refs(node: NodeSpec) -> list[tuple[Loc, str]]:
    """Every reference a node's ``inputs`` makes, with the field path of each."""
    out: list[tuple[Loc, str]] = []
    if isinstance(node.inputs, list):
        out += [(("inputs", i), r) for i, r in enumerate(node.inputs)]
    else:
        for key, value in node.inputs.items():
            if isinstance(value, list):
                out += [(("inputs", key, i), r) for i, r in enumerate(value)]
            else:
                out.append((("inputs", key), value))
    return out


def check_graph(
    nodes: Sequence[NodeSpec],
    sources: Iterable[str],
    outputs: dict[str, str],
    modules: dict,
    loc: Loc,
    outputs_loc: Loc,
    issues: IssueList,
    warnings: list[tuple[Loc, str]] | None = None,
) -> list[int]:
    """Check names, references and acyclicity of ``nodes``; return a topological order (indices)."""
    sources = list(sources)
    issues_before = len(issues)
    names: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.name in names:
            issues.add((*loc, i, "name"), f"duplicate node name '{node.name}' (first at "
                                          f"{format_path((*loc, names[node.name]))})", "node names must be unique")
        elif node.name in sources:
            issues.add((*loc, i, "name"), f"node name '{node.name}' is also an input name",
                       "rename the node or the input; references would be ambiguous")
        else:
            names[node.name] = i
        _check_node_type(node, modules, (*loc, i), issues)

    candidates = sources + [f"{n}.output" for n in names] + list(names)
    deps: dict[int, set[int]] = {i: set() for i in range(len(nodes))}
    for i, node in enumerate(nodes):
        refs = node_refs(node)
        if node.type == STACK and len(refs) != 1:
            issues.add((*loc, i, "inputs"), f"arc.stack takes exactly one input, got {len(refs)}")
        for rloc, text in refs:
            target = _check_ref(text, sources, names, candidates, (*loc, i, *rloc), issues)
            if target is not None:
                deps[i].add(target)
    for name, text in outputs.items():
        _check_ref(text, sources, names, candidates, (*outputs_loc, name), issues)

    order = _toposort(nodes, deps, loc, issues)
    if warnings is not None and order and len(issues) == issues_before:
        used = _reachable(outputs, names, deps)
        for i, node in enumerate(nodes):
            if i not in used:
                warnings.append(((*loc, i, "name"), f"node '{node.name}' does not feed any output"))
    return order


def _check_node_type(node: NodeSpec, modules: dict, loc: Loc, issues: IssueList) -> None:
    if node.type == STACK:
        params = node.params
        extra = set(params) - {"module", "count"}
        if extra:
            issues.add((*loc, "params", sorted(extra)[0]), "unknown arc.stack parameter",
                       "arc.stack takes {module: Name, count: N}")
        module = params.get("module")
        if not isinstance(module, str):
            issues.add((*loc, "params", "module"), "arc.stack needs the name of a module to repeat",
                       f"one of: {', '.join(modules) or '(no modules defined)'}")
        elif module not in modules:
            issues.add((*loc, "params", "module"), f"unknown module '{module}'", suggestion(module, modules))
        else:
            mdef = modules[module]
            if len(mdef.inputs) != 1 or len(mdef.outputs) != 1:
                issues.add((*loc, "params", "module"),
                           f"arc.stack chains '{module}' into itself, so it needs exactly one input and one "
                           f"output (it has {len(mdef.inputs)} and {len(mdef.outputs)})")
        count = params.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            issues.add((*loc, "params", "count"), f"expected a positive integer, got {count!r}")
        elif count > MAX_STACK:
            issues.add((*loc, "params", "count"), f"{count:,} copies is more than the {MAX_STACK:,} a stack may have",
                       "a deeper stack is a mistake in all but name")
    elif node.type.startswith(MODULE_PREFIX):
        name = node.type[len(MODULE_PREFIX):]
        if name not in modules:
            issues.add((*loc, "type"), f"unknown module '{name}'",
                       suggestion(name, modules) or f"define it under modules: ({', '.join(modules) or 'none defined'})")
        if node.params:
            issues.add((*loc, "params"), "a module node takes no params", "put parameters in the module's nodes")


def _check_ref(text: str, sources: list[str], names: dict[str, int], candidates: list[str],
               loc: Loc, issues: IssueList) -> int | None:
    try:
        ref = parse_ref(text)
    except ValueError as exc:
        issues.add(loc, f"bad reference '{text}': {exc}")
        return None
    if ref.root in names:
        return names[ref.root]
    if ref.root in sources:
        if ref.path:
            issues.add(loc, f"'{ref.root}' is an input; it has no elements to select", f"write '{ref.root}'")
        return None
    issues.add(loc, f"unknown reference '{text}' (expected an input name or <node>.output)",
               suggestion(text, candidates))
    return None


def _toposort(nodes: Sequence[NodeSpec], deps: dict[int, set[int]], loc: Loc, issues: IssueList) -> list[int]:
    remaining = {i: set(d) for i, d in deps.items()}
    order: list[int] = []
    while True:
        ready = [i for i, d in remaining.items() if not d]
        if not ready:
            break
        for i in ready:  # list order among ready nodes keeps the result stable
            order.append(i)
            del remaining[i]
        for d in remaining.values():
            d.difference_update(ready)
    if remaining:
        cycle = _find_cycle(remaining)
        names = " -> ".join(nodes[i].name for i in cycle)
        issues.add((*loc, cycle[0], "inputs"), f"the graph has a cycle: {names}",
                   "a node cannot depend on its own output")
        return []
    return order


def _find_cycle(remaining: dict[int, set[int]]) -> list[int]:
    start = min(remaining)
    path: list[int] = []
    seen: dict[int, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(remaining[node])
    cycle = path[seen[node]:]
    return [*cycle, cycle[0]]


def _reachable(outputs: dict[str, str], names: dict[str, int], deps: dict[int, set[int]]) -> set[int]:
    stack = []
    for text in outputs.values():
        try:
            root = parse_ref(text).root
        except ValueError:
            continue
        if root in names:
            stack.append(names[root])
    seen: set[int] = set()
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(deps.get(i, ()))
    return seen


# ----------------------------------------------------------------------------------------------


def check_model(spec: ModelSpec, warnings: list[tuple[Loc, str]] | None = None) -> IssueList:
    """All torch-free cross-field rules of a model spec."""
    issues = IssueList()
    for name, inp in spec.inputs.items():
        _check_input(name, inp, issues)

    if not _check_module_recursion(spec, issues):
        _check_stack_total(spec, issues)
    for mname, mdef in spec.modules.items():
        check_graph(mdef.graph, mdef.inputs, mdef.outputs, spec.modules, ("modules", mname, "graph"),
                    ("modules", mname, "outputs"), issues, warnings)
    check_graph(spec.graph, spec.inputs, spec.outputs, spec.modules, ("graph",), ("outputs",), issues, warnings)
    check_losses(spec, issues)
    return issues


def _check_input(name: str, inp, issues: IssueList) -> None:
    loc = ("inputs", name)
    if inp.shape[0] is not None:
        issues.add((*loc, "shape", 0), f"the first dimension is the batch and must be null, got {inp.shape[0]}",
                   f"write shape: [null{''.join(', ' + str(d) for d in inp.shape[1:])}]")
    if inp.columns:
        width = 1 if len(inp.shape) == 1 else inp.shape[-1]
        if len(inp.shape) > 2:
            issues.add((*loc, "columns"), "table columns feed 1-D ([null]) or 2-D ([null, k]) inputs only",
                       f"shape {inp.shape} cannot be filled from {len(inp.columns)} columns")
        elif width is not None and width != len(inp.columns) and not (
                len(inp.columns) == 1 and inp.dtype in INTEGER_DTYPES and len(inp.shape) == 2):
            # one column for [null, L] integer ids is a sequence read from a list column (INTEGER[])
            issues.add((*loc, "columns"), f"{len(inp.columns)} columns but the last dimension of shape is {width}",
                       f"write shape: [null, {len(inp.columns)}]" if len(inp.columns) > 1 else "write shape: [null]")
        dupes = sorted({c for c in inp.columns if inp.columns.count(c) > 1})
        if dupes:
            issues.add((*loc, "columns"), f"column '{dupes[0]}' is listed twice")
    if inp.categorical and inp.dtype not in INTEGER_DTYPES:
        issues.add((*loc, "dtype"), f"a categorical input holds integer ids, got dtype {inp.dtype}", "write dtype: int64")
    if inp.embedding_dim is not None and inp.dtype not in INTEGER_DTYPES:
        issues.add((*loc, "embedding_dim"), f"only integer ids can be embedded, got dtype {inp.dtype}",
                   "write dtype: int64")
    if inp.normalize != "none" and (inp.categorical or inp.dtype not in ("float16", "bfloat16", "float32", "float64")):
        issues.add((*loc, "normalize"), f"only float inputs are normalized (this one is "
                                        f"{'categorical' if inp.categorical else inp.dtype})", "write normalize: none")
    if inp.embedding_dim is not None and not inp.categorical and inp.vocab_size is None:
        issues.add((*loc, "vocab_size"), "an embedded input that is not categorical needs vocab_size",
                   "set vocab_size, or categorical: true to fit a vocabulary on the training split")


def _check_module_recursion(spec: ModelSpec, issues: IssueList) -> bool:
    """Refuse a module that uses itself (directly or through others); True when one does."""
    uses: dict[str, set[str]] = {}
    for mname, mdef in spec.modules.items():
        uses[mname] = {m for m in (_used_module(n) for n in mdef.graph) if m in spec.modules}
    for start in spec.modules:
        stack, seen = [(start, [start])], set()
        while stack:
            cur, path = stack.pop()
            for nxt in uses.get(cur, ()):
                if nxt == start:
                    issues.add(("modules", start), f"module '{start}' uses itself: {' -> '.join([*path, nxt])}")
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return False


def _stack_count(node: NodeSpec, modules: dict) -> tuple[str, int] | None:
    """(module, count) of a well-formed arc.stack node; None otherwise (its own checks report it)."""
    module, count = node.params.get("module"), node.params.get("count")
    if (node.type != STACK or module not in modules or not isinstance(count, int) or isinstance(count, bool)
            or not 1 <= count <= MAX_STACK):
        return None
    return module, count


def _check_stack_total(spec: ModelSpec, issues: IssueList) -> None:
    """Refuse stacks whose copies, multiplied through nested modules, exceed MAX_BLOCKS, before anything is
    built (the builder would otherwise make thousands of layers first). Needs modules without recursion."""
    blocks: dict[str, int] = {}

    def total(graph: list[NodeSpec], loc: Loc) -> int:
        """Stack blocks ``graph`` builds (capped just past the limit); the first node over the limit is reported."""
        running = 0
        for i, node in enumerate(graph):
            stacked = _stack_count(node, spec.modules)
            if stacked:
                running += stacked[1] * (1 + blocks.get(stacked[0], 0))
            elif node.type.startswith(MODULE_PREFIX):
                running += blocks.get(node.type[len(MODULE_PREFIX):], 0)
            if running > MAX_BLOCKS:
                where = (*loc, i, "params", "count") if stacked else (*loc, i, "type")
                issues.add(where, f"the stacks build more than {MAX_BLOCKS:,} blocks in all",
                           "stack counts multiply through nested modules; use fewer or smaller stacks")
                return MAX_BLOCKS + 1
        return running

    pending = list(spec.modules)
    while pending:  # modules in dependency order: a module's blocks once every module it uses is counted
        ready = [m for m in pending if all(u in blocks for u in
                                           {_used_module(n) for n in spec.modules[m].graph} & set(spec.modules))]
        for mname in ready:
            blocks[mname] = total(spec.modules[mname].graph, ("modules", mname, "graph"))
            if blocks[mname] > MAX_BLOCKS:
                return
        pending = [m for m in pending if m not in ready]
        if not ready:
            return
    total(spec.graph, ("graph",))


def _used_module(node: NodeSpec) -> str | None:
    if node.type == STACK:
        module = node.params.get("module")
        return module if isinstance(module, str) else None
    if node.type.startswith(MODULE_PREFIX):
        return node.type[len(MODULE_PREFIX):]
    return None


def check_losses(spec: ModelSpec, issues: IssueList) -> None:
    """Each loss reads a real output; targets are not also features; task names are unique."""
    losses = spec.losses
    many = isinstance(spec.loss, list)
    feature_columns = {c: (name, i) for name, inp in spec.inputs.items() for i, c in enumerate(inp.columns or [])}
    seen_tasks: set[str] = set()
    for k, loss in enumerate(losses):
        loc = ("loss", k) if many else ("loss",)
        out = loss.inputs.input
        if out is None:
            if len(spec.outputs) > 1:
                issues.add((*loc, "inputs", "input"), "the model has several outputs; name the one this loss reads",
                           f"one of: {', '.join(spec.outputs)}")
        elif out not in spec.outputs:
            hint = suggestion(out, spec.outputs) or f"one of: {', '.join(spec.outputs)}"
            issues.add((*loc, "inputs", "input"), f"'{out}' is not an output of the model", hint)
        for target in loss.inputs.target_columns:
            if target in feature_columns:
                name, i = feature_columns[target]
                issues.add((*loc, "inputs", "target"),
                           f"target column '{target}' is also a feature (inputs.{name}.columns[{i}])",
                           "the model would see its own target; remove it from the input columns")
        if isinstance(loss.inputs.target, list) and len(set(loss.inputs.target)) != len(loss.inputs.target):
            issues.add((*loc, "inputs", "target"), "a target column is listed twice")
        if loss.target_normalize != "none":
            from specml.spec.losses import task_of

            if task_of(loss.type) != "regression":
                issues.add((*loc, "target_normalize"), f"only regression targets are normalized; {loss.type} is "
                                                       f"a {task_of(loss.type)} loss", "remove target_normalize")
        task = loss.name or out or "loss"
        if many and task in seen_tasks:
            issues.add((*loc, "name"), f"two losses are both named '{task}'", "give each task a distinct name")
        seen_tasks.add(task)
