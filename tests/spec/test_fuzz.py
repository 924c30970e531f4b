"""Property-based mutation tests of the spec loader.

Every valid example spec (``examples/*/model.yaml`` and ``trainer.yaml``, and each pair put together
in the single-file and nested layouts) is mutated at a place picked by walking its nested dict: a key
dropped or misspelt, a value of a wrong type, a bad reference, a node duplicated or deleted, a type
name swapped for some other dotted name. Whatever the mutation, ``load_spec`` either returns or
raises :class:`SpecError` whose issues each carry a message and a field path. Any other exception
is a crash a user would see as a traceback.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from specml.spec import SpecError, SpecFile, SpecIssue, load_spec
from specml.spec.model import InputSpec, LossInputs, LossSpec, ModelSpec, ModuleDef, NodeSpec
from specml.spec.trainer import OptimizerSpec, SchedulerSpec, TrainerConfig, TrainerSpec
from specml.spec.yaml_io import read_yaml
from testkit import ROOT

torch.set_num_threads(1)

# model and trainer specs (estimator specs have their own tests in tests/classical)
EXAMPLE_FILES = sorted(p for p in (ROOT / "examples").glob("*/*.yaml") if "estimator" not in read_yaml(p)[0])
EXAMPLES: dict[str, dict] = {f"{p.parent.name}/{p.name}": read_yaml(p)[0] for p in EXAMPLE_FILES}


def _layouts() -> dict[str, tuple[str, dict]]:
    """Every example file as it is ("file"), and each model+trainer pair in the other layouts a file may
    use: a single-file spec with a ``training:`` section, the nested ``model:``/``trainer:`` layout, and a
    single-file spec whose loss is written in the training section as ``pred: model.<output>``."""
    seeds: dict[str, tuple[str, dict]] = {name: ("file", data) for name, data in EXAMPLES.items()}
    for model_path in sorted((ROOT / "examples").glob("*/model.yaml")):
        trainer_path = model_path.with_name("trainer.yaml")
        if not trainer_path.exists():
            continue
        stem = model_path.parent.name
        model, trainer = EXAMPLES[f"{stem}/model.yaml"], EXAMPLES[f"{stem}/trainer.yaml"]
        seeds[f"{stem}:single"] = ("single", {**copy.deepcopy(model), "training": copy.deepcopy(trainer)})
        seeds[f"{stem}:nested"] = ("nested", {"model": copy.deepcopy(model), "trainer": copy.deepcopy(trainer)})
        loss = model.get("loss")
        if isinstance(loss, dict) and isinstance(loss.get("inputs"), dict):
            moved = {k: copy.deepcopy(v) for k, v in loss.items() if k != "inputs"}
            moved["pred"] = "model." + loss["inputs"]["input"]
            moved["target"] = loss["inputs"]["target"]
            bare = {k: copy.deepcopy(v) for k, v in model.items() if k != "loss"}
            training = {**copy.deepcopy(trainer), "loss": moved}
            seeds[f"{stem}:loss-in-trainer"] = ("single", {**bare, "training": training})
    return seeds


SEEDS = _layouts()
LAYOUT = {name: layout for name, (layout, _) in SEEDS.items()}
SEED_DATA = {name: data for name, (_, data) in SEEDS.items()}

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

Path_ = tuple[str | int, ...]


# ----------------------------------------------------------------------------------------------
# walking a nested dict


def locations(obj: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every place in a nested dict/list (dict keys and list items), depth first, the root excluded."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from locations(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield (*prefix, i)
            yield from locations(value, (*prefix, i))


def get(obj: Any, path: Path_) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def pick_location(draw, data: dict, where: Callable[[Path_, Any], bool] = lambda p, v: True) -> Path_ | None:
    """A place in ``data`` where ``where(path, value)`` holds, drawn by hypothesis (None if there is none)."""
    candidates = [p for p in locations(data) if where(p, get(data, p))]
    if not candidates:
        return None
    return draw(st.sampled_from(candidates))


def graph_lists(data: dict) -> list[Path_]:
    """The node lists of a model spec (``graph``, ``modules.<M>.graph``, in any layout)."""
    return [p for p in locations(data) if p[-1] == "graph" and isinstance(get(data, p), list)]


def is_reference(path: Path_, value: Any) -> bool:
    """A reference string: in a node's ``inputs``, in ``outputs``, or the output a loss reads."""
    if not isinstance(value, str):
        return False
    parts = list(path)
    if "graph" in parts:
        rest = parts[parts.index("graph") + 2:]
        return bool(rest) and rest[0] == "inputs"
    if len(parts) >= 2 and parts[-2] == "outputs":
        return True
    return "loss" in parts and (parts[-2:] == ["inputs", "input"] or parts[-1] in ("pred", "prediction"))


def model_root(data: dict) -> dict:
    inner = data.get("model")
    return inner if isinstance(inner, dict) and ("graph" in inner or "inputs" in inner) else data


def names_in(data: dict) -> tuple[list[str], list[str]]:
    """(node names, input names) written anywhere in a model spec."""
    nodes: list[str] = []
    for gpath in graph_lists(data):
        nodes += [n["name"] for n in get(data, gpath) if isinstance(n, dict) and isinstance(n.get("name"), str)]
    root = model_root(data)
    inputs = [k for k in root["inputs"] if isinstance(k, str)] if isinstance(root.get("inputs"), dict) else []
    modules = root.get("modules") if isinstance(root.get("modules"), dict) else {}
    for mdef in modules.values():
        if isinstance(mdef, dict) and isinstance(mdef.get("inputs"), list):
            inputs += [i for i in mdef["inputs"] if isinstance(i, str)]
    return nodes or ["hidden1"], inputs or ["features"]


def split_layout(seed: str, path: Path_) -> tuple[str, Path_] | None:
    """(model|trainer, the path inside that part) for a place in a seed; None for the nested layout's root."""
    layout = LAYOUT[seed]
    if layout == "file":
        return ("model" if "graph" in SEED_DATA[seed] else "trainer"), path
    if layout == "single":
        return ("trainer", path[1:]) if path[:1] == ("training",) else ("model", path)
    if path[:1] == ("model",):
        return "model", path[1:]
    if path[:1] == ("trainer",):
        return "trainer", path[1:]
    return None


# ----------------------------------------------------------------------------------------------
# values


small_scalars = st.one_of(
    st.integers(-100, 100),
    st.sampled_from([0, -1, -5, -0.5, -1e-3, 0.0, 1e-12, float("inf"), float("-inf"), float("nan"), True, False]),
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    st.none(),
    st.text(max_size=12),
)
WRONG_VALUES = st.one_of(
    small_scalars,
    st.lists(small_scalars, max_size=4),
    st.dictionaries(st.text(max_size=8), small_scalars, max_size=3),
    st.dictionaries(st.integers(-3, 3), small_scalars, min_size=1, max_size=2),
    st.lists(st.dictionaries(st.sampled_from(["name", "type", "inputs", "params", "shape"]), small_scalars,
                             max_size=3), max_size=2),
)

identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
dotted_name = st.lists(identifier, min_size=1, max_size=4).map(".".join)
KNOWN_TYPE_NAMES = [
    "os.system", "builtins.eval", "builtins.exec", "subprocess.run", "__import__", "posix.system",
    "torch.nn.Linaer", "torch.nn.linear", "troch.nn.Linear", "nn.Linear", "F.relu", "torch.load", "torch.save",
    "torch.from_file", "torch.nn.Module", "torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.functional",
    "torch.nn", "torch", "torch.", ".", "", " ", "module.", "module.Nope", "module.ResidualBlock", "arc.stack",
    "arc.stak", "specml.layers.Nope", "torch.nn.Linear", "torch.nn.ReLU", "torch.nn.LSTM", "torch.nn.Embedding",
    "torch.nn.LayerNorm", "torch.cat", "torch.add", "torch.sigmoid", "torch.nn.functional.relu",
    "torch.nn.MSELoss", "torch.nn.BCELoss", "torch.nn.CrossEntropyLoss", "torch.nn.functional.mse_loss",
    "torch.optim.Adam", "torch.optim.SGD", "torch.optim.lr_scheduler.StepLR", "torch.optim.lr_scheduler.LambdaLR",
    "torch.optim.Optimizer", "adam", "sgd", "StepLR", "BCEWithLogitsLoss", "torch.nn.functional.dropout",
]
TYPE_NAMES = st.one_of(st.sampled_from(KNOWN_TYPE_NAMES), dotted_name, st.text(max_size=20))


@st.composite
def typos(draw, word: Any) -> str:
    """A misspelling of ``word`` (or some other text), never ``word`` itself."""
    word = str(word)
    kind = draw(st.sampled_from(["drop", "swap", "double", "replace", "case", "suffix", "random"]))
    n = len(word)
    if kind == "drop" and n > 1:
        i = draw(st.integers(0, n - 1))
        new = word[:i] + word[i + 1:]
    elif kind == "swap" and n > 1:
        i = draw(st.integers(0, n - 2))
        new = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    elif kind == "double" and n > 0:
        i = draw(st.integers(0, n - 1))
        new = word[:i] + word[i] + word[i:]
    elif kind == "replace" and n > 0:
        i = draw(st.integers(0, n - 1))
        new = word[:i] + draw(st.characters(codec="utf-8", exclude_categories=["Cs"])) + word[i + 1:]
    elif kind == "case":
        new = word.swapcase() if word.swapcase() != word else word.upper() + "X"
    elif kind == "suffix":
        new = word + draw(st.sampled_from(["s", "_", "1", " ", "-x"]))
    else:
        new = draw(st.text(max_size=12))
    return new if new != word else word + "_"


@st.composite
def bad_references(draw, data: dict) -> str:
    nodes, inputs = names_in(data)
    node = draw(st.sampled_from(nodes))
    inp = draw(st.sampled_from(inputs))
    return draw(st.one_of(
        st.sampled_from(["nonexistent", "", ".", ".output", "output", "a..b", "x.", "model.logits", "None",
                         "hidden1.outputs", "logits", "prediction", "classifier.output..0"]),
        st.just(node),  # the node itself (a self-reference when it is the node's own input)
        st.just(f"{node}.outptu"),
        st.just(f"{node}.output."),
        st.just(f"{node}.output.{draw(st.integers(-3, 12))}"),
        st.just(f"{node}.output.{draw(st.integers(0, 3))}.{draw(st.integers(0, 3))}"),
        st.just(f"{node}.output.{draw(identifier)}"),
        st.just(f"{inp}.output"),
        st.just(f"{inp}.output.0"),
        typos(node).map(lambda t: t + ".output"),
        typos(inp),
        st.text(max_size=16),
    ))


# ----------------------------------------------------------------------------------------------
# mutations: each edits ``data`` in place and returns a description, or None where it cannot apply


def m_drop(draw, data: dict) -> str | None:
    path = pick_location(draw, data)
    if path is None:
        return None
    parent = get(data, path[:-1])
    del parent[path[-1]]
    return f"drop {path}"


def m_rename(draw, data: dict) -> str | None:
    path = pick_location(draw, data, lambda p, v: not isinstance(p[-1], int))
    if path is None:
        return None
    parent = get(data, path[:-1])
    new = draw(typos(path[-1]))
    items = [(new if k == path[-1] else k, v) for k, v in parent.items() if k != new]
    parent.clear()
    parent.update(items)
    return f"rename {path} -> {new!r}"


def m_wrong_type(draw, data: dict) -> str | None:
    path = pick_location(draw, data)
    if path is None:
        return None
    value = draw(WRONG_VALUES)
    get(data, path[:-1])[path[-1]] = value
    return f"set {path} = {value!r}"


def m_bad_reference(draw, data: dict) -> str | None:
    path = pick_location(draw, data, is_reference)
    if path is None:
        return None
    value = draw(bad_references(data))
    get(data, path[:-1])[path[-1]] = value
    return f"reference {path} = {value!r}"


def _pick_node(draw, data: dict) -> tuple[Path_, int] | None:
    lists = [g for g in graph_lists(data) if get(data, g)]
    if not lists:
        return None
    gpath = draw(st.sampled_from(lists))
    return gpath, draw(st.integers(0, len(get(data, gpath)) - 1))


def m_duplicate_node(draw, data: dict) -> str | None:
    picked = _pick_node(draw, data)
    if picked is None:
        return None
    gpath, i = picked
    nodes = get(data, gpath)
    at = draw(st.integers(0, len(nodes)))
    nodes.insert(at, copy.deepcopy(nodes[i]))
    return f"duplicate {gpath}[{i}] at {at}"


def m_delete_node(draw, data: dict) -> str | None:
    picked = _pick_node(draw, data)
    if picked is None:
        return None
    gpath, i = picked
    del get(data, gpath)[i]
    return f"delete {gpath}[{i}]"


def m_swap_type(draw, data: dict) -> str | None:
    path = pick_location(draw, data, lambda p, v: p[-1] == "type" and isinstance(v, str))
    if path is None:
        return None
    value = draw(TYPE_NAMES)
    get(data, path[:-1])[path[-1]] = value
    return f"type {path} = {value!r}"


MUTATIONS: dict[str, Callable[[Any, dict], str | None]] = {
    "drop": m_drop,
    "rename": m_rename,
    "wrong_type": m_wrong_type,
    "bad_reference": m_bad_reference,
    "duplicate_node": m_duplicate_node,
    "delete_node": m_delete_node,
    "swap_type": m_swap_type,
}
NEEDS_GRAPH = {"bad_reference", "duplicate_node", "delete_node"}
MODEL_SEEDS = sorted(k for k, v in SEED_DATA.items() if graph_lists(v))


@st.composite
def mutated_specs(draw, kinds: tuple[str, ...] = tuple(MUTATIONS), max_mutations: int = 1) -> tuple[dict, list[str]]:
    """(a mutated copy of an example spec, what was done to it)."""
    needs_graph = all(k in NEEDS_GRAPH for k in kinds)
    name = draw(st.sampled_from(MODEL_SEEDS if needs_graph else sorted(SEEDS)))
    data = copy.deepcopy(SEED_DATA[name])
    done = [name]
    for _ in range(draw(st.integers(1, max_mutations))):
        kind = draw(st.sampled_from(kinds))
        what = MUTATIONS[kind](draw, data)
        if what is not None:
            done.append(what)
    assume(len(done) > 1)
    return data, done


# ----------------------------------------------------------------------------------------------
# the property


def check_issue(issue: Any) -> None:
    assert isinstance(issue, SpecIssue), f"not a SpecIssue: {issue!r}"
    assert isinstance(issue.message, str) and issue.message.strip(), f"empty message: {issue!r}"
    assert isinstance(issue.loc, tuple), f"loc is not a tuple: {issue!r}"
    assert all(isinstance(p, str | int) and not isinstance(p, bool) for p in issue.loc), f"odd loc: {issue!r}"
    assert isinstance(issue.path, str) and issue.path.strip(), f"empty path: {issue!r}"
    assert issue.hint is None or (isinstance(issue.hint, str) and issue.hint.strip()), f"empty hint: {issue!r}"
    assert isinstance(str(issue), str)


def load_or_spec_error(data: dict, *, check: bool) -> SpecFile | SpecError:
    """The property: ``load_spec`` returns a SpecFile or raises a well-formed SpecError, nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = load_spec(data, check=check)
        except SpecError as err:
            assert err.issues, "a SpecError without issues"
            for issue in err.issues:
                check_issue(issue)
            assert isinstance(str(err), str) and str(err).strip()
            return err
        except Exception as exc:  # noqa: BLE001 - any other exception is the failure this test looks for
            raise AssertionError(f"load_spec(check={check}) raised {type(exc).__name__}: {exc}") from exc
    assert isinstance(result, SpecFile)
    assert result.model is not None or result.trainer is not None
    return result


def run_property(case: tuple[dict, list[str]], *, check: bool = True) -> SpecFile | SpecError:
    data, done = case
    note(f"mutations: {done}")
    return load_or_spec_error(data, check=check)


# ----------------------------------------------------------------------------------------------
# tests


def test_seeds_are_found_and_valid():
    """The fuzzing starts from valid specs of every kind and layout; if these fail, the property tests mean nothing."""
    assert sum("graph" in v for v in EXAMPLES.values()) >= 3, sorted(EXAMPLES)
    assert sum("optimizer" in v for v in EXAMPLES.values()) >= 3, sorted(EXAMPLES)
    assert {"single", "nested"} <= set(LAYOUT.values()), sorted(SEEDS)
    assert any(name.endswith(":loss-in-trainer") for name in SEEDS), sorted(SEEDS)
    for name, data in SEED_DATA.items():
        result = load_or_spec_error(copy.deepcopy(data), check=True)
        assert isinstance(result, SpecFile), f"{name} is not valid: {result}"


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(("drop",)))
def test_dropped_key(case):
    run_property(case)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(("rename",)))
def test_renamed_key(case):
    run_property(case)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(("wrong_type",)))
def test_value_of_wrong_type(case):
    run_property(case)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(("bad_reference",)))
def test_bad_reference(case):
    run_property(case)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(("duplicate_node", "delete_node")))
def test_duplicated_or_deleted_node(case):
    run_property(case)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(("swap_type",)))
def test_swapped_type_name(case):
    run_property(case)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(max_mutations=3))
def test_several_mutations(case):
    run_property(case)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(mutated_specs(max_mutations=3))
def test_without_deep_check_only_spec_errors(case):
    run_property(case, check=False)


@settings(FUZZ, max_examples=60)
@given(mutated_specs(max_mutations=2))
def test_loader_leaves_its_input_untouched(case):
    data, done = case
    before = copy.deepcopy(data)
    run_property(case)
    assert repr(data) == repr(before), f"load_spec modified the dict it was given ({done})"


# -- targeted properties: the error is reported where the mistake is ------------------------


REFUSED_TYPES = st.one_of(
    st.sampled_from(["os.system", "builtins.eval", "subprocess.run", "posix.system", "torch.nn.Linaer",
                     "troch.nn.Linear", "torch.load", "torch.save", "torch.from_file", "torch.nn.Module",
                     "torch.nn.Sequential", "specml.layers.Nope", "torch.optim.Adamm", "shutil.rmtree"]),
    dotted_name.map(lambda n: "zz" + n),
)


@pytest.mark.slow  # 150 examples
@FUZZ
@given(data=st.data())
def test_refused_type_is_reported_at_its_path(data):
    """A ``type:`` that does not resolve (node, loss, optimizer, scheduler) is an error at that very path,
    in every layout, and the message names the type."""
    name = data.draw(st.sampled_from(sorted(SEEDS)), label="seed")
    spec = copy.deepcopy(SEED_DATA[name])
    path = data.draw(st.sampled_from([p for p in locations(spec)
                                      if p[-1] == "type" and isinstance(get(spec, p), str)
                                      and get(spec, p) != "arc.stack"]), label="path")
    refused = data.draw(REFUSED_TYPES, label="type")
    get(spec, path[:-1])["type"] = refused
    result = load_or_spec_error(spec, check=True)
    assert isinstance(result, SpecError), f"{name}: {path} = {refused!r} was accepted"
    at_path = [i for i in result.issues if i.loc == path]
    assert at_path, f"{name}: no issue at {path}: {[str(i) for i in result.issues]}"
    assert any(refused in i.message for i in at_path), [str(i) for i in at_path]


STRICT = {
    "model": {(): ModelSpec, ("loss",): LossSpec, ("loss", "inputs"): LossInputs},
    "trainer": {(): TrainerSpec, ("optimizer",): OptimizerSpec, ("config",): TrainerConfig,
                ("scheduler",): SchedulerSpec, ("loss",): LossSpec, ("loss", "inputs"): LossInputs},
}


def _strict_class_at(seed: str, parent: Path_) -> type | None:
    """The spec model whose fields the keys under ``parent`` are (None where keys are free names)."""
    split = split_layout(seed, parent)
    if split is None:
        return None
    kind, inner = split
    if inner in STRICT[kind]:
        return STRICT[kind][inner]
    if kind == "model":
        if len(inner) == 2 and inner[0] == "inputs":
            return InputSpec
        if len(inner) == 2 and inner[0] == "graph":
            return NodeSpec
        if len(inner) == 2 and inner[0] == "modules":
            return ModuleDef
        if len(inner) == 4 and inner[0] == "modules" and inner[2] == "graph":
            return NodeSpec
    return None


def strict_key_paths(seed: str, spec: dict) -> list[Path_]:
    """Keys of ``spec`` (4+ letters) that are fields of a spec model, where an unknown key is an error."""
    out: list[Path_] = []
    for path in locations(spec):
        key = path[-1]
        if isinstance(key, str) and len(key) >= 4:
            cls = _strict_class_at(seed, path[:-1])
            if cls is not None and key in cls.model_fields:
                out.append(path)
    return out


@pytest.mark.slow  # 150 examples
@FUZZ
@given(data=st.data())
def test_misspelt_key_is_reported_with_did_you_mean(data):
    """A known key with one letter doubled is an unknown key, reported where it is written, with the
    key it resembles as a hint."""
    name = data.draw(st.sampled_from(sorted(SEEDS)), label="seed")
    spec = copy.deepcopy(SEED_DATA[name])
    path = data.draw(st.sampled_from(strict_key_paths(name, spec)), label="key")
    key = path[-1]
    i = data.draw(st.integers(0, len(key) - 1), label="doubled letter")
    new = key[:i] + key[i] + key[i:]
    parent = get(spec, path[:-1])
    items = [(new if k == key else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)
    result = load_or_spec_error(spec, check=False)
    assert isinstance(result, SpecError), f"{name}: {key!r} -> {new!r} was accepted"
    loc = (*path[:-1], new)
    hits = [x for x in result.issues if x.loc == loc]
    assert hits, f"{name}: no issue at {loc}: {[str(x) for x in result.issues]}"
    assert any(f"unknown key '{new}'" in x.message for x in hits), [str(x) for x in hits]
    assert any(x.hint and re.search(r"did you mean '\w+'\?", x.hint) for x in hits), [str(x) for x in hits]


LOSS_SEEDS = sorted(k for k, v in SEED_DATA.items()
                    if any("loss" in p and p[-1] in ("input", "pred") for p in locations(v)))


def _outputs_of(spec: dict) -> dict:
    outputs = model_root(spec).get("outputs")
    return outputs if isinstance(outputs, dict) else {}


@pytest.mark.slow  # 150 examples
@FUZZ
@given(data=st.data())
def test_bad_loss_wiring_is_reported_where_written(data):
    """A loss that reads an output the model does not have, or whose target column is also a feature, is
    an error at the place the loss names it, whichever layout holds the loss."""
    name = data.draw(st.sampled_from(LOSS_SEEDS), label="seed")
    spec = copy.deepcopy(SEED_DATA[name])
    what = data.draw(st.sampled_from(["output", "target"]), label="what")
    if what == "output":
        path = next(p for p in locations(spec) if "loss" in p and p[-1] in ("input", "pred")
                    and isinstance(get(spec, p), str))
        outputs = _outputs_of(spec)
        value = data.draw(st.one_of(typos(next(iter(outputs))), identifier)
                          .filter(lambda v: v.removeprefix("model.") not in outputs), label="output")
        if path[-1] == "pred":
            value = "model." + value
    else:
        path = next(p for p in locations(spec) if "loss" in p and p[-1] == "target")
        columns = [c for inp in model_root(spec)["inputs"].values() for c in inp.get("columns") or []]
        value = data.draw(st.sampled_from(columns), label="feature column")
    get(spec, path[:-1])[path[-1]] = value
    for check in (False, True):
        result = load_or_spec_error(copy.deepcopy(spec), check=check)
        assert isinstance(result, SpecError), f"{name}: {path} = {value!r} was accepted (check={check})"
        hits = [x for x in result.issues if x.loc == path]
        assert hits, f"{name}: no issue at {path}: {[str(x) for x in result.issues]}"


# -- fixed counterexamples (kept explicit so they are checked on every run, not only when drawn) --


def _set(spec: dict, path: Path_, value: Any) -> dict:
    spec = copy.deepcopy(spec)
    get(spec, path[:-1])[path[-1]] = value
    return spec


FIXED = [
    ("pima_mlp/model.yaml", ("outputs", "logits"), "classifier.output.5"),
    ("pima_mlp/model.yaml", ("graph", 1, "inputs", "input"), "hidden1.output.9"),
    ("pima_mlp/model.yaml", ("graph", 1, "inputs", "input"), "hidden1.output.name"),
    ("pima_mlp/model.yaml", ("outputs", "prediction"), "probability.output.0.0.0"),
    ("residual_mlp/model.yaml", ("graph", 2, "inputs", "input"), "blocks.output.7"),
    ("multi_input/model.yaml", ("graph", 2, "inputs", 0), "tower_act.output.4"),
    ("pima_mlp/model.yaml", ("graph", 0, "inputs", "input"), "hidden1.output"),
    ("pima_mlp/model.yaml", ("graph", 0, "type"), "os.system"),
    ("logistic/trainer.yaml", ("optimizer", "params", "momentum"), -1),
    ("pima_mlp/trainer.yaml", ("scheduler", "params", "factor"), 2.0),
    ("pima_mlp/model.yaml", ("inputs", "patient_data", "shape"), [None, -8]),
    ("residual_mlp/model.yaml", ("graph", 1, "params", "count"), 0),
    ("pima_mlp:loss-in-trainer", ("training", "loss", "pred"), "model.nonexistent"),
    ("pima_mlp:loss-in-trainer", ("training", "loss", "type"), "os.system"),
    ("residual_mlp:nested", ("model", "graph", 0, "inputs", "input"), "stem.output"),
]


@pytest.mark.parametrize("example, path, value", FIXED, ids=[f"{e}:{p}={v!r}" for e, p, v in FIXED])
@pytest.mark.parametrize("check", [True, False], ids=["deep", "shallow"])
def test_fixed_mutation_gives_spec_error(example, path, value, check):
    result = load_or_spec_error(_set(SEED_DATA[example], path, value), check=check)
    if check:
        assert isinstance(result, SpecError), f"{path} = {value!r} was accepted"
