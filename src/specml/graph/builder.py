"""Model spec -> ``torch.nn.Module``.

``build_model(spec)`` returns a :class:`SpecModel` whose ``forward(**inputs)`` returns a dict of the
spec's outputs. The execution plan (which node runs when, with which arguments) is computed once,
here, from the graph's edges; ``forward`` only walks that plan, so it traces, scripts-by-tracing and
compiles (``torch.compile``) like a hand-written module.

Building reports every problem it meets as a :class:`SpecIssue` with the node's field path:
types outside the allow-list, unknown or missing constructor parameters, constructor failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from specml.graph.allowlist import SEQUENCE_FIRST, NotAllowed, resolve, signature_params
from specml.graph.layers import ParamError
from specml.spec.check import MAX_BLOCKS, MODULE_PREFIX, STACK, Ref, check_graph, node_refs, parse_ref
from specml.spec.errors import IssueList, Loc, SpecError, suggestion
from specml.spec.model import ModelSpec, ModuleDef, NodeSpec

#: a single map input under one of these keys is passed positionally when the callee has no
#: parameter of that name (Arc files write ``inputs: {input: x}`` for every layer)
GENERIC_KEYS = ("input", "x")
#: names a node or input may not take: attributes of the ModuleDicts that hold them
RESERVED_NAMES = frozenset(dir(nn.ModuleDict()))
TORCH_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64,
    "int8": torch.int8, "int16": torch.int16, "int32": torch.int32, "int64": torch.int64,
    "uint8": torch.uint8, "bool": torch.bool,
}


@dataclass(frozen=True)
class Arg:
    """One argument of a step: a single reference, or a list of them (``many``)."""

    refs: tuple[Ref, ...]
    many: bool = False


@dataclass(frozen=True)
class Step:
    """One node of the plan: call ``fn`` (a function, or the module registered as ``nodes[name]``).

    ``roots`` / ``keyword_roots`` are the fast path: when every argument is a plain reference to a whole
    value (the common case, positional or by keyword), their names, so ``run`` reads each with one dict
    lookup.
    """

    name: str
    type: str
    module: bool
    fn: Any
    args: tuple[Arg, ...]
    kwargs: tuple[tuple[str, Arg], ...]
    const: dict
    loc: Loc
    roots: tuple[str, ...] | None = None
    keyword_roots: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def make(name: str, type: str, module: bool, fn: Any, args: tuple[Arg, ...],
             kwargs: tuple[tuple[str, Arg], ...], const: dict, loc: Loc) -> Step:
        def whole(a: Arg) -> bool:
            return not a.many and not a.refs[0].path

        simple = all(whole(a) for a in args) and all(whole(a) for _, a in kwargs)
        roots = tuple(a.refs[0].root for a in args) if simple else None
        keyword_roots = tuple((k, a.refs[0].root) for k, a in kwargs) if simple else ()
        return Step(name, type, module, fn, args, kwargs, const, loc, roots, keyword_roots)


def _value(env: dict, arg: Arg) -> Any:
    if arg.many:
        return [_select(env, r) for r in arg.refs]
    return _select(env, arg.refs[0])


def _select(env: dict, ref: Ref) -> Any:
    value = env[ref.root]
    for part in ref.path:
        value = value[part]
    return value


class Graph(nn.Module):
    """A DAG of nodes with named inputs and outputs (the model itself, or a ``modules:`` entry)."""

    def __init__(self, input_names: tuple[str, ...], nodes: dict[str, nn.Module], plan: tuple[Step, ...],
                 outputs: tuple[tuple[str, Ref], ...], single_output: bool) -> None:
        super().__init__()
        self.input_names = input_names
        self.nodes = nn.ModuleDict(nodes)
        self.plan = plan
        self.output_refs = outputs
        self.single_output = single_output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        env = dict(zip(self.input_names, args))
        env.update(kwargs)
        return self.run(env)

    def run(self, env: dict, on_step: Any = None) -> Any:
        """Walk the plan over ``env`` (input name -> tensor) and read the outputs."""
        self.run_nodes(env, on_step)
        return self.read_outputs(env)

    def run_nodes(self, env: dict, on_step: Any = None) -> None:
        """Run every node, in plan order, storing results in ``env``. ``on_step`` lets the checker watch."""
        for step in self.plan:
            fn = step.fn
            if step.roots is not None and on_step is None:  # the fast path
                if step.keyword_roots:
                    env[step.name] = fn(*[env[r] for r in step.roots], **{k: env[r] for k, r in step.keyword_roots},
                                        **step.const)
                else:
                    env[step.name] = fn(*[env[r] for r in step.roots], **step.const)
                continue
            if on_step is not None:
                env[step.name] = on_step(self, step, env)
                continue
            args = [_value(env, a) for a in step.args]
            kwargs = {k: _value(env, a) for k, a in step.kwargs}
            env[step.name] = fn(*args, **kwargs, **step.const)

    def read_outputs(self, env: dict) -> Any:
        if self.single_output:
            return _select(env, self.output_refs[0][1])
        return {name: _select(env, ref) for name, ref in self.output_refs}


class Stack(nn.Module):
    """``arc.stack``: ``count`` copies of a one-input, one-output module, each feeding the next."""

    def __init__(self, blocks: list[Graph]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Any) -> Any:
        for block in self.blocks:
            x = block(x)
        return x


class SpecModel(Graph):
    """The model a spec describes. ``forward(**inputs)`` returns ``{output name: tensor}``."""

    def __init__(self, spec: ModelSpec, embeddings: dict[str, nn.Module], vocab_sizes: dict[str, int] | None = None,
                 **graph: Any) -> None:
        super().__init__(**graph)
        self.spec = spec
        self.embeddings = nn.ModuleDict(embeddings)
        #: vocabulary size (incl. id 0) of each categorical input, where known; example ids stay below it
        self.vocab_sizes = dict(vocab_sizes or {})

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.output_refs)

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        env = dict(zip(self.input_names, args))
        env.update(kwargs)
        return self.run(self.embed(env))

    def embed(self, env: dict) -> dict:
        missing = [n for n in self.input_names if n not in env]
        if missing:
            raise TypeError(f"missing model input(s): {', '.join(missing)} (inputs: {', '.join(self.input_names)})")
        for name, emb in self.embeddings.items():
            env[name] = emb(env[name])
        return env

    def example_inputs(self, batch_size: int = 2, seq_len: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
        """A dummy batch matching the spec's inputs (null dims: ``batch_size``, then ``seq_len``)."""
        gen = torch.Generator().manual_seed(seed)
        batch: dict[str, torch.Tensor] = {}
        for name, inp in self.spec.inputs.items():
            shape = [batch_size if i == 0 else (seq_len if d is None else d) for i, d in enumerate(inp.shape)]
            dtype = TORCH_DTYPES[inp.dtype]
            if dtype.is_floating_point:
                batch[name] = torch.randn(shape, generator=gen).to(dtype)
            elif dtype == torch.bool:
                batch[name] = torch.zeros(shape, dtype=torch.bool)
            else:
                high = (self.embeddings[name].num_embeddings if name in self.embeddings
                        else self.vocab_sizes.get(name) or inp.vocab_size or 1)
                batch[name] = torch.randint(0, high, shape, generator=gen, dtype=dtype)
        return batch


def target_at(value: Any, loc: Loc) -> Loc | None:
    """The field path of the first ``_target_`` key inside ``value`` (dicts and lists, any depth), or None."""
    stack: list[tuple[Any, Loc]] = [(value, loc)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            if "_target_" in item:
                return (*at, "_target_")
            stack += [(v, (*at, k)) for k, v in reversed(item.items())]
        elif isinstance(item, list | tuple):
            stack += [(v, (*at, i)) for i, v in reversed(list(enumerate(item)))]
    return None


class _Builder:
    """Builds graphs and collects every issue met on the way."""

    def __init__(self, spec: ModelSpec, vocab_sizes: dict[str, int] | None, placeholder: int | None = None) -> None:
        self.spec = spec
        self.vocab_sizes = vocab_sizes or {}
        self.placeholder = placeholder  # the check's stand-in for a vocabulary only the data can tell
        self.placeholder_used: list[str] = []  # categorical inputs that got the placeholder
        self.filled: dict[str, str] = {}  # node name -> the categorical input its num_embeddings came from
        self.issues = IssueList()
        self.stacked = 0  # blocks built by arc.stack so far

    def vocab_size(self, name: str) -> int | None:
        """The vocabulary size of categorical input ``name``: from the data, the spec, or the placeholder."""
        size = self.vocab_sizes.get(name) or self.spec.inputs[name].vocab_size
        if size is None and self.placeholder is not None:
            size = self.placeholder
            if name not in self.placeholder_used:
                self.placeholder_used.append(name)
        return size

    # -- nodes ------------------------------------------------------------------------------------

    def node(self, node: NodeSpec, loc: Loc) -> tuple[nn.Module | None, Any]:
        """(module, None) or (None, function) for one node; (None, None) after an issue."""
        if node.name in RESERVED_NAMES:
            self.issues.add((*loc, "name"), f"node name '{node.name}' clashes with a torch.nn.Module attribute",
                            "rename the node")
            return None, None
        if node.type == STACK:
            mname, count = node.params["module"], node.params["count"]
            mloc = ("modules", mname)
            self.stacked += count
            if self.stacked > MAX_BLOCKS:  # stacks of modules that stack: the product explodes
                self.issues.add((*loc, "params", "count"), f"the stacks build more than {MAX_BLOCKS:,} blocks in all")
                return None, None
            blocks = [self.graph(self.spec.modules[mname], mloc) for _ in range(count)]
            return (Stack(blocks) if all(b is not None for b in blocks) else None), None
        if node.type.startswith(MODULE_PREFIX):
            mname = node.type[len(MODULE_PREFIX):]
            return self.graph(self.spec.modules[mname], ("modules", mname)), None
        try:
            resolved = resolve(node.type)
        except NotAllowed as exc:
            self.issues.add((*loc, "type"), exc.message, exc.hint)
            return None, None
        if resolved.kind == "function":
            if not self.no_target(node.params, (*loc, "params"), "a function's params"):
                return None, None
            self._check_kwargs(resolved.target, node.params, (*loc, "params"), node.type, "takes")
            return None, resolved.target
        params = self.params(node.params, (*loc, "params"))
        if params is None or not self._check_kwargs(resolved.target, params, (*loc, "params"), node.type, "has"):
            return None, None
        if loc[0] == "graph" and not self.from_vocabulary(node, resolved.target, params, (*loc, "params")):
            return None, None
        return self.instantiate(resolved.target, params, node.type, (*loc, "params")), None

    def from_vocabulary(self, node: NodeSpec, cls: Any, params: dict, loc: Loc) -> bool:
        """Fill ``num_embeddings`` (and ``num_columns``) of an embedding fed by a categorical model input.

        Applies to classes taking ``num_embeddings`` (``specml.layers.FeatureEmbedding``,
        ``torch.nn.Embedding``, ``torch.nn.EmbeddingBag``) whose one input is a categorical, not
        embedded, model input: the size comes from the data's vocabulary or the input's ``vocab_size``.
        A size given in the spec that is smaller than a known vocabulary is an error.
        """
        sig = signature_params(cls)
        refs = [r for _, r in node_refs(node)]
        if sig is None or "num_embeddings" not in sig[0] or len(refs) != 1:
            return True
        ref = parse_ref(refs[0])
        inp = self.spec.inputs.get(ref.root)
        if inp is None or ref.path or not inp.categorical or inp.embedding_dim is not None:
            return True
        if "num_columns" in sig[0] and "num_columns" not in params and not isinstance(params.get("num_embeddings"),
                                                                                      list | tuple):
            params["num_columns"] = 1 if len(inp.shape) == 1 else inp.shape[-1]
        given = params.get("num_embeddings")
        if given is None:
            size = self.vocab_size(ref.root)
            if size is None:
                self.issues.add((*loc, "num_embeddings"),
                                f"left to the data, but the vocabulary size of input '{ref.root}' is unknown",
                                f"set vocab_size on inputs.{ref.root}, give num_embeddings, or fit the "
                                "vocabulary on a table")
                return False
            params["num_embeddings"] = size
            self.filled[node.name] = ref.root
            return True
        known = self.vocab_sizes.get(ref.root) or inp.vocab_size
        sizes = given if isinstance(given, list | tuple) else [given]
        small = [n for n in sizes if isinstance(n, int) and known is not None and n < known]
        if small:
            self.issues.add((*loc, "num_embeddings"),
                            f"{small[0]} is smaller than the vocabulary of input '{ref.root}' ({known} ids incl. "
                            "0 = unknown)", f"leave num_embeddings out to take it from the data, or raise it "
                                            f"to {known}")
            return False
        return True

    def params(self, params: dict, loc: Loc) -> dict | None:
        """Constructor kwargs, with nested ``{_target_: torch.nn.X, ...}`` built through the allow-list."""
        out: dict = {}
        ok = True
        for key, value in params.items():
            if isinstance(value, dict) and "_target_" in value:
                inner = dict(value)
                target = inner.pop("_target_")
                try:
                    resolved = resolve(target)
                except NotAllowed as exc:
                    self.issues.add((*loc, key, "_target_"), exc.message, exc.hint)
                    ok = False
                    continue
                if resolved.kind != "module":
                    self.issues.add((*loc, key, "_target_"), f"'{target}' is a function; _target_ builds a module",
                                    "name a torch.nn module class")
                    ok = False
                    continue
                inner_params = self.params(inner, (*loc, key))
                if inner_params is None or not self._check_kwargs(resolved.target, inner_params, (*loc, key),
                                                                  target, "has"):
                    ok = False
                    continue
                out[key] = self.instantiate(resolved.target, inner_params, target, (*loc, key))
                ok = ok and out[key] is not None
            elif self.no_target(value, (*loc, key), "a value inside a parameter"):
                out[key] = value
            else:
                ok = False
        return out if ok else None

    def no_target(self, value: Any, loc: Loc, where: str) -> bool:
        """False (with an issue) when ``value`` holds a ``_target_`` key that nothing would build."""
        found = target_at(value, loc)
        if found is not None:
            self.issues.add(found, f"_target_ is not read in {where}: only a module parameter's value is built from "
                                   "it; here the dict would be passed as it is",
                            "remove _target_, or make the module a node of its own")
        return found is None

    def _check_kwargs(self, target: Any, params: dict, loc: Loc, type_name: str, verb: str) -> bool:
        sig = signature_params(target)
        if sig is None:
            return True
        names, var_kw = sig
        ok = True
        if not var_kw:
            for key in params:
                if key not in names:
                    self.issues.add((*loc, key), f"{type_name} {verb} no parameter '{key}'",
                                    suggestion(key, names) or f"parameters: {', '.join(sorted(names)) or 'none'}")
                    ok = False
        return ok

    def instantiate(self, cls: type, params: dict, type_name: str, loc: Loc) -> nn.Module | None:
        import inspect

        try:
            sig = inspect.signature(cls)
        except (TypeError, ValueError):
            sig = None
        if sig is not None:
            missing = [p.name for p in sig.parameters.values()
                       if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                       and p.name not in params]
            if missing:
                self.issues.add(loc, f"{type_name} needs parameter{'s' if len(missing) > 1 else ''} "
                                     f"{', '.join(repr(m) for m in missing)}", f"add them under {loc[-1]}:")
                return None
        try:
            return cls(**params)
        except ParamError as exc:  # specml's layers name the parameter at fault
            where = (*loc, exc.param) if exc.param in params else loc
            self.issues.add(where, f"{type_name}: {exc.message}")
            return None
        except Exception as exc:  # a constructor's own check (e.g. d_model not divisible by nhead)
            self.issues.add(loc, f"{type_name}({_kwargs_text(params)}) failed: {_one_line(exc)}")
            return None

    # -- graphs -----------------------------------------------------------------------------------

    def graph(self, mdef: ModuleDef, loc: Loc) -> Graph | None:
        nodes, plan = self.plan(mdef.graph, mdef.inputs, mdef.outputs, (*loc, "graph"), (*loc, "outputs"))
        if plan is None:
            return None
        outputs = tuple((k, parse_ref(v)) for k, v in mdef.outputs.items())
        return Graph(tuple(mdef.inputs), nodes, plan, outputs, single_output=len(outputs) == 1)

    def plan(self, graph: list[NodeSpec], sources, outputs: dict[str, str], loc: Loc,
             outputs_loc: Loc) -> tuple[dict[str, nn.Module], tuple[Step, ...] | None]:
        order = check_graph(graph, sources, outputs, self.spec.modules, loc, outputs_loc, self.issues)
        modules: dict[str, nn.Module] = {}
        steps: list[Step] = []
        for i in order:
            node = graph[i]
            module, fn = self.node(node, (*loc, i))
            if module is None and fn is None:
                continue
            if module is not None:
                modules[node.name] = module
            args, kwargs = self.arguments(node, module if module is not None else fn, (*loc, i))
            const = {} if module is not None else dict(node.params)
            target = module if module is not None else fn
            steps.append(Step.make(node.name, node.type, module is not None, target, args, kwargs, const, (*loc, i)))
        if len(steps) != len(graph) or self.issues:
            return modules, None
        return modules, tuple(steps)

    def arguments(self, node: NodeSpec, callee: Any, loc: Loc) -> tuple[tuple[Arg, ...], tuple[tuple[str, Arg], ...]]:
        if isinstance(node.inputs, list):
            refs = tuple(parse_ref(r) for r in node.inputs)
            short = node.type.rsplit(".", 1)[-1]
            if not isinstance(callee, nn.Module) and short in SEQUENCE_FIRST:
                return (Arg(refs, many=True),), ()
            return tuple(Arg((r,)) for r in refs), ()
        if isinstance(callee, Stack):  # one input (checked), fed to the first block
            (key, value), = node.inputs.items()
            first = callee.blocks[0].input_names[0]
            if key not in (first, *GENERIC_KEYS):
                self.issues.add((*loc, "inputs", key), f"arc.stack feeds its module's input '{first}'",
                                f"write inputs: {{{first}: ...}}")
            return (self._arg(value),), ()
        target = callee.forward if isinstance(callee, nn.Module) else callee
        sig = None if isinstance(callee, Graph | Stack) else signature_params(target)
        if isinstance(callee, Graph):
            sig = (set(callee.input_names), False)
        items = list(node.inputs.items())
        if len(items) == 1 and items[0][0] in GENERIC_KEYS and (sig is None or items[0][0] not in sig[0]):
            key, value = items[0]
            return (self._arg(value),), ()
        if sig is not None and not sig[1]:
            for key, _ in items:
                if key not in sig[0]:
                    self.issues.add((*loc, "inputs", key), f"{node.type} takes no input '{key}'",
                                    suggestion(key, sig[0]) or f"inputs: {', '.join(sorted(sig[0]))}")
        return (), tuple((k, self._arg(v)) for k, v in items)

    @staticmethod
    def _arg(value: str | list[str]) -> Arg:
        if isinstance(value, list):
            return Arg(tuple(parse_ref(r) for r in value), many=True)
        return Arg((parse_ref(value),))

    def model(self) -> SpecModel | None:
        spec = self.spec
        embeddings: dict[str, nn.Module] = {}
        for name, inp in spec.inputs.items():
            if inp.embedding_dim is not None:
                vocab = self.vocab_size(name)
                if vocab is None:
                    self.issues.add(("inputs", name, "vocab_size"),
                                    "unknown vocabulary size: set vocab_size or fit the vocabulary on a table")
                    continue
                if name in RESERVED_NAMES:
                    self.issues.add(("inputs", name), f"input name '{name}' clashes with a torch.nn.Module attribute",
                                    "rename the input")
                    continue
                embeddings[name] = nn.Embedding(vocab, inp.embedding_dim)
        nodes, plan = self.plan(spec.graph, spec.inputs, spec.outputs, ("graph",), ("outputs",))
        if plan is None or self.issues:
            return None
        outputs = tuple((k, parse_ref(v)) for k, v in spec.outputs.items())
        known = {n: self.vocab_sizes.get(n) or i.vocab_size for n, i in spec.inputs.items() if i.categorical}
        known.update({n: self.placeholder for n in self.placeholder_used})
        return SpecModel(spec, embeddings, {n: v for n, v in known.items() if v is not None},
                         input_names=tuple(spec.inputs), nodes=nodes, plan=plan, outputs=outputs, single_output=False)


def _kwargs_text(params: dict) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return text if len(text) < 120 else text[:117] + "..."


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def build_model(spec: ModelSpec, *, vocab_sizes: dict[str, int] | None = None) -> SpecModel:
    """Build the ``nn.Module`` a model spec describes.

    ``spec`` is a :class:`ModelSpec` (from a file: ``specml.spec.load_model_spec(path)``; the loader calls
    the graph checks, so the builder never calls the loader). ``vocab_sizes`` gives the vocabulary size of
    embedded categorical inputs whose spec leaves it to the data.
    Raises :class:`SpecError` with field paths when the spec cannot be built.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"build_model takes a ModelSpec, not {type(spec).__name__}: load a file or a dict with "
                        "specml.spec.load_model_spec first")
    builder = _Builder(spec, vocab_sizes)
    model = builder.model()
    if model is None:
        raise SpecError(list(builder.issues))
    return model
