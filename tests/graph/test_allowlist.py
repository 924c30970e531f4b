"""The allow-list: which ``type:`` names resolve, which are refused, and that nothing is imported.

Plugins are tested for real: a tiny distribution with a ``*.dist-info/entry_points.txt`` is written
to a temporary directory on ``sys.path``, so ``importlib.metadata`` finds it like an installed one.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from specml.graph import allowlist, build_model
from specml.graph.allowlist import NotAllowed, Resolved, resolve, resolve_loss
from specml.graph.layers import Concat, Select, Stack
from specml.spec import SpecError, load_spec
from testkit import model_from

torch.set_num_threads(1)

REFUSED = [
    "os.system",
    "builtins.eval",
    "subprocess.run",
    "torch.load",
    "torch.hub.load",
    "torch.from_file",
    "torch.nn.Module",
    "importlib.import_module",
]


def spec_with_type(type_name: str, params: dict | None = None) -> dict:
    return {
        "inputs": {"x": {"dtype": "float32", "shape": [None, 4], "columns": ["a", "b", "c", "d"]}},
        "graph": [
            {"name": "first", "type": "torch.nn.Linear", "params": {"in_features": 4, "out_features": 4},
             "inputs": {"input": "x"}},
            {"name": "suspect", "type": type_name, "params": params or {}, "inputs": {"input": "first.output"}},
        ],
        "outputs": {"y": "suspect.output"},
    }


def spec_issues(spec: dict, check: bool = True):
    with pytest.raises(SpecError) as info:
        load_spec(spec, check=check)
    return info.value.issues


# ----------------------------------------------------------------------------------------------
# refused


@pytest.mark.parametrize("name", REFUSED)
def test_refused_by_resolve(name):
    with pytest.raises(NotAllowed) as info:
        resolve(name)
    assert name in info.value.message
    assert info.value.hint  # says what a spec may name instead


@pytest.mark.parametrize("name", REFUSED)
def test_refused_in_a_spec_at_the_node_type(name):
    issues = spec_issues(spec_with_type(name))
    assert [i.path for i in issues] == ["graph[1].type"]
    assert name in issues[0].message and "not allowed" in issues[0].message
    assert issues[0].hint


@pytest.mark.parametrize("name", REFUSED)
def test_refused_by_build_model(name):
    with pytest.raises(SpecError) as info:
        model_from(spec_with_type(name))
    assert [i.path for i in info.value.issues] == ["graph[1].type"]


@pytest.mark.parametrize("name", REFUSED)
def test_refused_as_nested_target(name):
    spec = spec_with_type("torch.nn.TransformerEncoder", {"encoder_layer": {"_target_": name}, "num_layers": 1})
    issues = spec_issues(spec)
    assert [i.path for i in issues] == ["graph[1].params.encoder_layer._target_"]


@pytest.mark.parametrize("name", REFUSED)
def test_refused_as_loss(name):
    spec = spec_with_type("torch.nn.ReLU")
    spec["loss"] = {"type": name, "inputs": {"input": "y", "target": "t"}}
    issues = spec_issues(spec)
    assert [i.path for i in issues] == ["loss.type"]


@pytest.mark.parametrize("name", ["torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict",
                                  "torch.save", "torch.Tensor", "torch.nn.modules.linear.Linear",
                                  "torch.ops.aten.add", "torch.nn.functional.torch", "eval", "open",
                                  "__import__", "specml.spec.load.load_spec", "specml.layers._tensors"])
def test_other_paths_are_refused(name):
    with pytest.raises(NotAllowed):
        resolve(name)


@pytest.mark.parametrize("bad", [None, 3, ["torch.nn.Linear"]])
def test_non_string_type(bad):
    with pytest.raises(NotAllowed):
        resolve(bad)


@pytest.fixture
def canary(tmp_path, monkeypatch):
    """A real importable module that records being imported (it must never be)."""
    root = tmp_path / "canary_site"
    root.mkdir()
    marker = tmp_path / "imported.txt"
    (root / "evil_pkg_xyz").mkdir()
    (root / "evil_pkg_xyz" / "__init__.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
        "def run(*a, **k):\n    return a\n"
    )
    (root / "evil_pkg_xyz" / "sub.py").write_text("def run(*a, **k):\n    return a\n")
    monkeypatch.syspath_prepend(str(root))
    yield marker
    for mod in [m for m in sys.modules if m == "evil_pkg_xyz" or m.startswith("evil_pkg_xyz.")]:
        del sys.modules[mod]


@pytest.mark.parametrize("name", ["evil_pkg_xyz.run", "evil_pkg_xyz.sub.run", "evil_pkg_xyz"])
def test_refused_names_are_never_imported(canary, name):
    import importlib.util

    assert importlib.util.find_spec("evil_pkg_xyz") is not None  # it *could* be imported
    with pytest.raises(NotAllowed):
        resolve(name)
    issues = spec_issues(spec_with_type(name))
    assert issues[0].path == "graph[1].type"
    with pytest.raises(SpecError):
        model_from(spec_with_type(name))
    spec = spec_with_type("torch.nn.TransformerEncoder", {"encoder_layer": {"_target_": name}, "num_layers": 1})
    spec_issues(spec)
    assert not any(m == "evil_pkg_xyz" or m.startswith("evil_pkg_xyz.") for m in sys.modules)
    assert not canary.exists()


@pytest.mark.parametrize("name", ["os.system", "subprocess.run", "importlib.import_module"])
def test_refused_stdlib_modules_are_not_imported_for_the_check(name):
    module = name.rsplit(".", 1)[0]
    was_loaded = module in sys.modules
    with pytest.raises(NotAllowed):
        resolve(name)
    assert (module in sys.modules) == was_loaded


# ----------------------------------------------------------------------------------------------
# allowed


@pytest.mark.parametrize(
    ("name", "kind", "target"),
    [
        ("torch.nn.Linear", "module", nn.Linear),
        ("torch.nn.TransformerEncoderLayer", "module", nn.TransformerEncoderLayer),
        ("torch.nn.BCEWithLogitsLoss", "module", nn.BCEWithLogitsLoss),
        ("torch.nn.functional.relu", "function", F.relu),
        ("torch.nn.functional.binary_cross_entropy_with_logits", "function", F.binary_cross_entropy_with_logits),
        ("torch.cat", "function", torch.cat),
        ("torch.einsum", "function", torch.einsum),
        ("torch.add", "function", torch.add),
        ("torch.sigmoid", "function", torch.sigmoid),
        ("specml.layers.Concat", "module", Concat),
        ("specml.layers.Stack", "module", Stack),
        ("specml.layers.Select", "module", Select),
    ],
)
def test_allowed_names_resolve(name, kind, target):
    resolved = resolve(name)
    assert isinstance(resolved, Resolved)
    assert (resolved.name, resolved.kind) == (name, kind)
    assert resolved.target is target


def test_close_misspellings_get_a_did_you_mean():
    with pytest.raises(NotAllowed) as info:
        resolve("torch.nn.Linaer")
    assert "did you mean 'torch.nn.Linear'?" == info.value.hint
    with pytest.raises(NotAllowed) as info:
        resolve("nn.Linear")
    assert "did you mean 'torch.nn.Linear'?" in info.value.hint
    with pytest.raises(NotAllowed) as info:
        resolve("troch.nn.Linear")
    assert "did you mean 'torch.nn.Linear'?" in info.value.hint


def test_misspelled_type_in_a_spec():
    issues = spec_issues(spec_with_type("torch.nn.functional.rleu"))
    assert issues[0].path == "graph[1].type"
    assert issues[0].hint == "did you mean 'torch.nn.functional.relu'?"


def test_torch_check_runs_only_with_check_true():
    load_spec(spec_with_type("os.system"), check=False)  # torch-free rules do not look types up
    with pytest.raises(SpecError):
        load_spec(spec_with_type("os.system"), check=True)


@pytest.mark.parametrize("short", ["BCEWithLogitsLoss", "mse_loss"])
def test_loss_short_names_resolve(short):
    resolved = resolve_loss(short)
    assert resolved.name.endswith(short) and resolved.name.startswith("torch.nn.")


def test_all_names_lists_the_tables():
    names = allowlist.all_names()
    assert "torch.nn.Linear" in names and "torch.cat" in names and "specml.layers.Concat" in names
    assert not any(n in names for n in REFUSED)
    assert "torch.nn.Sequential" not in names


# ----------------------------------------------------------------------------------------------
# plugins through the specml.layers entry-point group

PLUGIN_CODE = '''
import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, factor: float = 2.0):
        super().__init__()
        self.factor = factor
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x * self.factor + self.bias


def shift(x, by: float = 1.0):
    return x + by


NOT_CALLABLE = 42
'''

ENTRY_POINTS = """
[specml.layers]
acme_xyz.Scale = acme_layers_xyz:Scale
acme_xyz.shift = acme_layers_xyz:shift
acme_xyz.constant = acme_layers_xyz:NOT_CALLABLE
torch.nn.Linear = acme_layers_xyz:Scale
torch.nn.Evil = acme_layers_xyz:Scale
specml.layers.Evil = acme_layers_xyz:Scale
arc.stack = acme_layers_xyz:Scale
module.Evil = acme_layers_xyz:Scale
"""


@pytest.fixture
def plugin(tmp_path):
    site = tmp_path / "plugin_site"
    pkg = site / "acme_layers_xyz"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN_CODE))
    dist = site / "acme_layers_xyz-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-layers-xyz\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS).lstrip())
    (dist / "RECORD").write_text("")
    sys.path.insert(0, str(site))
    allowlist.plugins.cache_clear()
    allowlist._tables.cache_clear()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for mod in [m for m in sys.modules if m == "acme_layers_xyz" or m.startswith("acme_layers_xyz.")]:
            del sys.modules[mod]
        allowlist.plugins.cache_clear()
        allowlist._tables.cache_clear()


def test_plugin_class_resolves(plugin):
    resolved = resolve("acme_xyz.Scale")
    assert resolved.kind == "module"
    assert resolved.target.__name__ == "Scale" and issubclass(resolved.target, nn.Module)
    assert resolved.target.__module__ == "acme_layers_xyz"


def test_plugin_function_resolves(plugin):
    resolved = resolve("acme_xyz.shift")
    assert resolved.kind == "function"
    assert resolved.target(torch.zeros(1), by=3.0).item() == 3.0


def test_plugin_non_callable_is_skipped(plugin):
    with pytest.raises(NotAllowed):
        resolve("acme_xyz.constant")


def test_plugins_cannot_shadow_reserved_names(plugin):
    assert resolve("torch.nn.Linear").target is nn.Linear
    for name in ("torch.nn.Evil", "specml.layers.Evil", "module.Evil", "arc.stack"):
        assert name not in allowlist.plugins()
    with pytest.raises(NotAllowed):
        resolve("torch.nn.Evil")
    with pytest.raises(NotAllowed):
        resolve("specml.layers.Evil")


def test_plugin_in_a_spec_builds_and_runs(plugin):
    spec = spec_with_type("acme_xyz.Scale", {"factor": 3.0})
    spec["graph"].append({"name": "shifted", "type": "acme_xyz.shift", "params": {"by": 0.5},
                          "inputs": {"x": "suspect.output"}})
    spec["outputs"]["z"] = "shifted.output"
    loaded = load_spec(spec, check=True)
    assert loaded.checked.output_shapes == {"y": "[B, 4]", "z": "[B, 4]"}
    model = build_model(loaded.model).eval()
    assert type(model.nodes["suspect"]).__name__ == "Scale"
    assert model.nodes["suspect"].factor == 3.0
    assert "nodes.suspect.bias" in model.state_dict()
    batch = model.example_inputs(2)
    with torch.no_grad():
        out = model(**batch)
        first = model.nodes["first"](batch["x"])
    torch.testing.assert_close(out["y"], first * 3.0)
    torch.testing.assert_close(out["z"], first * 3.0 + 0.5)


def test_plugin_param_typo_is_found(plugin):
    issues = spec_issues(spec_with_type("acme_xyz.Scale", {"factr": 3.0}))
    assert issues[0].path == "graph[1].params.factr"
    assert issues[0].hint == "did you mean 'factor'?"


def test_plugin_is_gone_once_uninstalled(plugin):
    assert "acme_xyz.Scale" in allowlist.plugins()
    sys.path.remove(str(plugin))
    allowlist.plugins.cache_clear()
    try:
        with pytest.raises(NotAllowed):
            resolve("acme_xyz.Scale")
    finally:
        sys.path.insert(0, str(plugin))
        allowlist.plugins.cache_clear()


def test_no_plugin_without_the_distribution():
    assert "acme_xyz.Scale" not in allowlist.plugins()
    with pytest.raises(NotAllowed):
        resolve("acme_xyz.Scale")
