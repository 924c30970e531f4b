"""The model spec (Arc-Graph): loading, normalizing, the torch-free rules and the variants 1-9.

Every test goes through the public loaders (``load_model_spec`` / ``load_spec``) on dicts or on
real YAML files, and asserts the field path, message and hint a user would read.
"""

from __future__ import annotations

import copy
import textwrap
import time
from pathlib import Path

import pytest
import torch

from specml.spec import (
    LossSpec,
    ModelSpec,
    SpecError,
    SpecIssue,
    SpecWarning,
    load_model_spec,
    load_spec,
    load_trainer_spec,
    merge_loss,
)
from testkit import ROOT as REPO

torch.set_num_threads(1)

VARIANTS = REPO / "tests" / "fixtures" / "variants"


# ----------------------------------------------------------------------------------------------
# helpers


def mlp() -> dict:
    """A small valid spec: 4 features -> Linear -> ReLU -> Linear, two outputs, one loss."""
    return {
        "name": "tiny",
        "inputs": {"x": {"dtype": "float32", "shape": [None, 4], "columns": ["a", "b", "c", "d"]}},
        "graph": [
            {"name": "hidden1", "type": "torch.nn.Linear", "params": {"in_features": 4, "out_features": 8},
             "inputs": {"input": "x"}},
            {"name": "act", "type": "torch.nn.ReLU", "inputs": {"input": "hidden1.output"}},
            {"name": "head", "type": "torch.nn.Linear", "params": {"in_features": 8, "out_features": 1},
             "inputs": {"input": "act.output"}},
            {"name": "prob", "type": "torch.sigmoid", "inputs": {"input": "head.output"}},
        ],
        "outputs": {"logits": "head.output", "prediction": "prob.output"},
        "loss": {"type": "torch.nn.functional.binary_cross_entropy_with_logits",
                 "inputs": {"input": "logits", "target": "y"}},
    }


def issues_of(source, *, check: bool = False) -> list[SpecIssue]:
    with pytest.raises(SpecError) as info:
        load_spec(source, check=check)
    issues = info.value.issues
    assert issues, "a SpecError must carry at least one issue"
    assert all(isinstance(i, SpecIssue) for i in issues)
    return issues


def issue_at(issues: list[SpecIssue], path: str) -> SpecIssue:
    found = [i for i in issues if i.path == path]
    assert found, f"no issue at {path!r}; got {[(i.path, i.message) for i in issues]}"
    return found[0]


def write(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# the happy path


def test_valid_spec_loads_with_torch_checks():
    spec = load_model_spec(mlp())
    assert isinstance(spec, ModelSpec)
    assert [n.name for n in spec.graph] == ["hidden1", "act", "head", "prob"]
    assert spec.outputs == {"logits": "head.output", "prediction": "prob.output"}
    assert isinstance(spec.loss, LossSpec)
    assert spec.losses[0].inputs.input == "logits" and spec.losses[0].inputs.target == "y"
    assert spec.losses[0].weight == 1.0


def test_load_spec_reports_kind_and_output_shapes():
    loaded = load_spec(mlp())
    assert loaded.kind == "model"
    assert loaded.trainer is None
    assert loaded.checked.output_shapes == {"logits": "[B, 1]", "prediction": "[B, 1]"}


def test_check_false_does_not_need_a_buildable_graph():
    data = mlp()
    data["graph"][0]["params"]["in_features"] = 5  # a shape error only the dry forward pass sees
    load_model_spec(data, check=False)
    with pytest.raises(SpecError):
        load_model_spec(data, check=True)


def test_model_name_is_an_alias_of_name():
    data = mlp()
    data["model_name"] = data.pop("name")
    assert load_model_spec(data, check=False).name == "tiny"


def test_name_and_model_name_that_differ_are_an_error():
    data = mlp()
    data["model_name"] = "other"
    issue = issue_at(issues_of(data), "model_name")
    assert "contradicts name" in issue.message


def test_spec_is_not_modified_in_place():
    data = mlp()
    data["model_name"] = data.pop("name")
    before = copy.deepcopy(data)
    load_model_spec(data, check=False)
    assert data == before


# ----------------------------------------------------------------------------------------------
# inputs


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("long", "int64"), ("int", "int32"), ("float", "float32"), ("double", "float64"),
     ("int64", "int64"), ("float64", "float64"), ("bool", "bool")],
)
def test_dtype_aliases_normalize(written, canonical):
    data = mlp()
    data["inputs"]["extra"] = {"dtype": written, "shape": [None], "columns": ["e"]}
    spec = load_model_spec(data, check=False)
    assert spec.inputs["extra"].dtype == canonical


def test_dtype_defaults_to_float32():
    data = mlp()
    del data["inputs"]["x"]["dtype"]
    assert load_model_spec(data, check=False).inputs["x"].dtype == "float32"


def test_unknown_dtype_suggests_the_closest():
    data = mlp()
    data["inputs"]["x"]["dtype"] = "flaot32"
    issue = issue_at(issues_of(data), "inputs.x.dtype")
    assert "flaot32" in issue.message
    assert issue.hint == "did you mean 'float32'?"


def test_first_dimension_must_be_null():
    data = mlp()
    data["inputs"]["x"]["shape"] = [32, 4]
    issue = issue_at(issues_of(data), "inputs.x.shape[0]")
    assert "batch" in issue.message and "null" in issue.message
    assert issue.hint == "write shape: [null, 4]"


def test_shape_must_not_be_empty():
    data = mlp()
    data["inputs"]["x"]["shape"] = []
    assert issue_at(issues_of(data), "inputs.x.shape")


def test_shape_dimensions_must_be_positive():
    data = mlp()
    data["inputs"]["x"]["shape"] = [None, 0]
    assert issue_at(issues_of(data), "inputs.x.shape[1]")


def test_column_count_must_match_last_dimension():
    data = mlp()
    data["inputs"]["x"]["columns"] = ["a", "b", "c"]
    issue = issue_at(issues_of(data), "inputs.x.columns")
    assert "3 columns" in issue.message and "4" in issue.message
    assert issue.hint == "write shape: [null, 3]"


def test_one_column_with_shape_null_is_one_dimensional():
    data = mlp()
    data["inputs"]["age"] = {"dtype": "float32", "shape": [None], "columns": ["age"]}
    assert load_model_spec(data, check=False).inputs["age"].shape == [None]


def test_two_columns_do_not_fit_shape_null():
    data = mlp()
    data["inputs"]["age"] = {"dtype": "float32", "shape": [None], "columns": ["age", "bmi"]}
    issue = issue_at(issues_of(data), "inputs.age.columns")
    assert issue.hint == "write shape: [null, 2]"


def test_empty_columns_are_allowed_for_caller_fed_inputs():
    data = mlp()
    data["inputs"]["x"]["columns"] = []
    assert load_model_spec(data, check=False).inputs["x"].columns == []


def test_a_column_listed_twice_is_an_error():
    data = mlp()
    data["inputs"]["x"]["columns"] = ["a", "b", "a", "d"]
    assert "'a' is listed twice" in issue_at(issues_of(data), "inputs.x.columns").message


def test_categorical_needs_an_integer_dtype():
    data = mlp()
    data["inputs"]["country"] = {"dtype": "float32", "shape": [None, 1], "columns": ["native_country"],
                                 "categorical": True}
    issue = issue_at(issues_of(data), "inputs.country.dtype")
    assert "integer" in issue.message
    assert issue.hint == "write dtype: int64"


def test_categorical_with_integer_alias_is_fine():
    data = mlp()
    data["inputs"]["country"] = {"dtype": "long", "shape": [None, 1], "columns": ["native_country"],
                                 "categorical": True, "vocab_size": 42, "embedding_dim": 8}
    country = load_model_spec(data, check=False).inputs["country"]
    assert (country.dtype, country.categorical, country.vocab_size, country.embedding_dim) == ("int64", True, 42, 8)


def test_embedding_dim_needs_integer_ids():
    data = mlp()
    data["inputs"]["country"] = {"dtype": "float32", "shape": [None], "columns": ["c"], "vocab_size": 5,
                                 "embedding_dim": 4}
    assert "integer" in issue_at(issues_of(data), "inputs.country.embedding_dim").message


def test_embedding_dim_without_vocabulary_needs_vocab_size():
    data = mlp()
    data["inputs"]["country"] = {"dtype": "int64", "shape": [None], "columns": ["c"], "embedding_dim": 4}
    assert issue_at(issues_of(data), "inputs.country.vocab_size")


@pytest.mark.parametrize("bad", [0, -3, "eight"])
def test_embedding_dim_must_be_a_positive_integer(bad):
    data = mlp()
    data["inputs"]["country"] = {"dtype": "int64", "shape": [None], "columns": ["c"], "categorical": True,
                                 "embedding_dim": bad}
    assert issue_at(issues_of(data), "inputs.country.embedding_dim")


def test_categorical_input_without_vocab_size_passes_the_torch_check():
    data = mlp()
    data["inputs"]["country"] = {"dtype": "int64", "shape": [None], "columns": ["c"], "categorical": True,
                                 "embedding_dim": 3}
    data["graph"].append({"name": "joined", "type": "torch.cat", "params": {"dim": 1},
                          "inputs": ["head.output", "country"]})
    data["outputs"]["joined"] = "joined.output"
    loaded = load_spec(data)
    assert loaded.checked.placeholder_vocab == ["country"]
    assert loaded.checked.output_shapes["joined"] == "[B, 4]"


# ----------------------------------------------------------------------------------------------
# graph nodes, references


def test_map_inputs_are_keyword_and_list_inputs_positional():
    data = mlp()
    data["graph"].append({"name": "both", "type": "torch.add", "inputs": ["head.output", "prob.output"]})
    data["outputs"]["both"] = "both.output"
    spec = load_model_spec(data)
    assert spec.graph[0].inputs == {"input": "x"}
    assert spec.graph[-1].inputs == ["head.output", "prob.output"]


def test_a_list_of_references_as_a_keyword_value():
    data = mlp()
    data["graph"].append({"name": "joined", "type": "torch.cat", "params": {"dim": 1},
                          "inputs": {"tensors": ["head.output", "prob.output"]}})
    data["outputs"]["joined"] = "joined.output"
    assert load_model_spec(data).graph[-1].inputs == {"tensors": ["head.output", "prob.output"]}


def test_inputs_must_be_a_map_or_a_list():
    data = mlp()
    data["graph"][1]["inputs"] = "hidden1.output"
    issue = issue_at(issues_of(data), "graph[1].inputs")
    assert "map" in issue.message and "list" in issue.message


@pytest.mark.filterwarnings("ignore::specml.spec.SpecWarning")  # `act` is skipped for hidden1 refs
@pytest.mark.parametrize("ref", ["hidden1", "hidden1.output", "act", "act.output"])
def test_node_reference_forms(ref):
    data = mlp()
    data["graph"][2]["inputs"] = {"input": ref}
    load_model_spec(data)


def test_input_reference_and_tuple_references_are_accepted():
    data = {
        "inputs": {"seq": {"dtype": "float32", "shape": [None, 5, 4], "columns": []}},
        "graph": [
            {"name": "attn", "type": "torch.nn.MultiheadAttention",
             "params": {"embed_dim": 4, "num_heads": 2, "batch_first": True},
             "inputs": {"query": "seq", "key": "seq", "value": "seq"}},
            {"name": "lstm", "type": "torch.nn.LSTM",
             "params": {"input_size": 4, "hidden_size": 3, "batch_first": True},
             "inputs": {"input": "attn.output.0"}},
        ],
        "outputs": {"h_n": "lstm.output.1.0", "c_n": "lstm.output.1.1", "weights": "attn.output.1"},
    }
    loaded = load_spec(data)
    assert loaded.checked.output_shapes == {"h_n": "[1, B, 3]", "c_n": "[1, B, 3]", "weights": "[B, 5, 5]"}


def test_unknown_reference_suggests_the_closest():
    data = mlp()
    data["graph"][1]["inputs"] = {"input": "hiden1.output"}
    issue = issue_at(issues_of(data), "graph[1].inputs.input")
    assert "unknown reference 'hiden1.output'" in issue.message
    assert issue.hint == "did you mean 'hidden1.output'?"


def test_unknown_reference_in_a_list_input_has_its_index():
    data = mlp()
    data["graph"].append({"name": "both", "type": "torch.add", "inputs": ["head.output", "porb.output"]})
    data["outputs"]["both"] = "both.output"
    issue = issue_at(issues_of(data), "graph[4].inputs[1]")
    assert issue.hint == "did you mean 'prob.output'?"


def test_unknown_reference_to_an_input_suggests_the_input():
    data = mlp()
    data["graph"][0]["inputs"] = {"input": "xx"}
    assert issue_at(issues_of(data), "graph[0].inputs.input").hint == "did you mean 'x'?"


def test_reference_must_continue_with_output():
    data = mlp()
    data["graph"][1]["inputs"] = {"input": "hidden1.outptu"}
    issue = issue_at(issues_of(data), "graph[1].inputs.input")
    assert "hidden1.output" in issue.message


def test_an_input_has_no_elements():
    data = mlp()
    data["graph"][0]["inputs"] = {"input": "x.output.0"}
    issue = issue_at(issues_of(data), "graph[0].inputs.input")
    assert "is an input" in issue.message
    assert issue.hint == "write 'x'"


def test_duplicate_node_names():
    data = mlp()
    data["graph"][1]["name"] = "hidden1"
    issue = issue_at(issues_of(data), "graph[1].name")
    assert "duplicate node name 'hidden1'" in issue.message
    assert "graph[0]" in issue.message


def test_node_named_like_an_input():
    data = mlp()
    data["graph"][1]["name"] = "x"
    data["graph"][2]["inputs"] = {"input": "hidden1"}
    issue = issue_at(issues_of(data), "graph[1].name")
    assert "'x' is also an input name" in issue.message


@pytest.mark.parametrize("bad", ["2fast", "has space", "dotted.name", ""])
def test_invalid_node_names(bad):
    data = mlp()
    data["graph"][3]["name"] = bad
    assert issue_at(issues_of(data), "graph[3].name")


def test_cycle_is_reported_with_the_node_names():
    data = mlp()
    data["graph"][0]["inputs"] = {"input": "act.output"}  # hidden1 <- act <- hidden1
    issues = issues_of(data)
    cycle = [i for i in issues if "cycle" in i.message]
    assert len(cycle) == 1
    assert "hidden1" in cycle[0].message and "act" in cycle[0].message
    assert cycle[0].path in ("graph[0].inputs", "graph[1].inputs")


def test_cycle_names_only_the_nodes_on_it():
    data = mlp()
    # prob (listed first) reads the cycle but is not on it: hidden1 -> act -> head -> hidden1
    data["graph"].insert(0, data["graph"].pop())
    data["graph"][1]["inputs"] = {"input": "head.output"}
    cycle = [i for i in issues_of(data) if "cycle" in i.message]
    assert len(cycle) == 1
    named = cycle[0].message.split(":", 1)[1]
    assert all(n in named for n in ("hidden1", "act", "head"))
    assert "prob" not in named


def test_a_node_reading_its_own_output_is_a_cycle():
    data = mlp()
    data["graph"][1]["inputs"] = {"input": "act.output"}
    cycle = [i for i in issues_of(data) if "cycle" in i.message]
    assert cycle and "act -> act" in cycle[0].message


def test_outputs_must_reference_known_nodes():
    data = mlp()
    data["outputs"]["logits"] = "haed.output"
    issue = issue_at(issues_of(data), "outputs.logits")
    assert "haed.output" in issue.message
    assert issue.hint == "did you mean 'head.output'?"


def test_several_problems_are_reported_in_one_pass():
    data = mlp()
    data["graph"][1]["inputs"] = {"input": "hiden1.output"}
    data["graph"][3]["name"] = "head"
    data["outputs"]["logits"] = "nope.output"
    paths = {i.path for i in issues_of(data)}
    assert {"graph[1].inputs.input", "graph[3].name", "outputs.logits"} <= paths


def test_a_node_that_feeds_no_output_is_a_warning():
    data = mlp()
    data["graph"].append({"name": "unused", "type": "torch.nn.ReLU", "inputs": {"input": "x"}})
    with pytest.warns(SpecWarning, match="unused"):
        loaded = load_spec(data, check=False)
    assert any("graph[4].name" in w and "does not feed any output" in w for w in loaded.warnings)


def test_spec_error_text_names_file_path_and_hint(tmp_path):
    data = mlp()
    data["graph"][1]["inputs"] = {"input": "hiden1.output"}
    from specml.spec.yaml_io import dump_yaml

    path = tmp_path / "m.yaml"
    path.write_text(dump_yaml(data))
    with pytest.raises(SpecError) as info:
        load_spec(path, check=False)
    text = str(info.value)
    assert str(path) in text and "graph[1].inputs.input" in text and "did you mean 'hidden1.output'?" in text
    assert isinstance(info.value, ValueError)


def test_issue_has_file_and_line(tmp_path):
    path = write(tmp_path, """
        inputs:
          x: {dtype: float32, shape: [null, 2], columns: [a, b]}
        graph:
          - name: fc
            type: torch.nn.Linear
            params: {in_features: 2, out_features: 1}
            inputs:
              input: xx
        outputs:
          y: fc.output
        """)
    issue = issue_at(issues_of(path), "graph[0].inputs.input")
    assert issue.file == str(path)
    assert issue.line == 8


def test_missing_file_is_a_spec_error(tmp_path):
    issues = issues_of(tmp_path / "nope.yaml")
    assert "not found" in issues[0].message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_a_file_that_is_not_a_mapping(tmp_path, text):
    issues = issues_of(write(tmp_path, text))
    assert "expected a mapping" in issues[0].message


def test_invalid_yaml_has_a_line(tmp_path):
    path = write(tmp_path, "inputs:\n  x: {dtype: float32\ngraph: []\n")
    issue = issues_of(path)[0]
    assert "not valid YAML" in issue.message
    assert issue.line is not None


def test_a_trainer_file_is_not_a_model_spec():
    with pytest.raises(SpecError, match="trainer spec, not a model spec"):
        load_model_spec(VARIANTS / "v4_optimizer_config.yaml", check=False)


@pytest.mark.parametrize("missing", ["inputs", "graph", "outputs"])
def test_required_sections(missing):
    data = mlp()
    del data[missing]
    issue = issue_at(issues_of(data), missing)
    assert "missing" in issue.message


# ----------------------------------------------------------------------------------------------
# unknown keys


@pytest.mark.parametrize(
    ("where", "typo", "path", "meant"),
    [
        ((), "grpah", "grpah", "graph"),
        ((), "ouputs", "ouputs", "outputs"),
        (("inputs", "x"), "colums", "inputs.x.colums", "columns"),
        (("inputs", "x"), "embeding_dim", "inputs.x.embeding_dim", "embedding_dim"),
        (("graph", 0), "parms", "graph[0].parms", "params"),
        (("graph", 1), "imputs", "graph[1].imputs", "inputs"),
        (("loss",), "wieght", "loss.wieght", "weight"),
        (("loss", "inputs"), "targte", "loss.inputs.targte", "target"),
    ],
)
def test_unknown_keys_are_errors_with_did_you_mean(where, typo, path, meant):
    data = mlp()
    node = data
    for part in where:
        node = node[part]
    node[typo] = node.pop(meant, "value")
    issue = issue_at(issues_of(data), path)
    assert issue.message == f"unknown key '{typo}'"
    assert issue.hint == f"did you mean '{meant}'?"


def test_unknown_key_in_a_module():
    data = mlp()
    data["modules"] = {"Block": {"inputs": ["z"], "grpah": [], "outputs": {"out": "z"}}}
    issues = issues_of(data)
    issue = issue_at(issues, "modules.Block.grpah")
    assert issue.hint == "did you mean 'graph'?"


def test_unknown_key_without_a_close_match_lists_the_allowed_keys():
    data = mlp()
    data["inputs"]["x"]["zzzzzz"] = 1
    issue = issue_at(issues_of(data), "inputs.x.zzzzzz")
    assert "columns" in issue.hint and "dtype" in issue.hint


# ----------------------------------------------------------------------------------------------
# loss


def test_loss_input_must_be_an_output_name():
    data = mlp()
    data["loss"]["inputs"]["input"] = "logit"
    issue = issue_at(issues_of(data), "loss.inputs.input")
    assert "'logit' is not an output" in issue.message
    assert issue.hint == "did you mean 'logits'?"


def test_loss_input_naming_a_node_instead_of_an_output():
    data = mlp()
    data["loss"]["inputs"]["input"] = "head.output"
    issue = issue_at(issues_of(data), "loss.inputs.input")
    assert "not an output" in issue.message


def test_loss_without_input_needs_one_when_several_outputs():
    data = mlp()
    del data["loss"]["inputs"]["input"]
    issue = issue_at(issues_of(data), "loss.inputs.input")
    assert "logits" in issue.hint and "prediction" in issue.hint


def test_loss_without_input_is_fine_with_a_single_output():
    data = mlp()
    del data["outputs"]["prediction"]
    data["graph"].pop()
    del data["loss"]["inputs"]["input"]
    assert load_model_spec(data).losses[0].inputs.input is None


def test_loss_target_that_is_also_a_feature_is_an_error():
    data = mlp()
    data["loss"]["inputs"]["target"] = "c"
    issue = issue_at(issues_of(data), "loss.inputs.target")
    assert "'c'" in issue.message and "inputs.x.columns[2]" in issue.message


def test_loss_as_a_bare_type_string():
    data = mlp()
    del data["outputs"]["prediction"]
    data["graph"].pop()
    data["loss"] = "torch.nn.BCEWithLogitsLoss"
    spec = load_model_spec(data)
    assert spec.losses[0].type == "torch.nn.BCEWithLogitsLoss"


def test_loss_params_are_kept():
    data = mlp()
    data["loss"] = {"type": "torch.nn.BCEWithLogitsLoss", "inputs": {"input": "logits", "target": "y"},
                    "params": {"pos_weight": 2.0}}
    assert load_model_spec(data).losses[0].params == {"pos_weight": 2.0}


def mmoe() -> dict:
    data = mlp()
    data["graph"].append({"name": "reg", "type": "torch.nn.Linear", "params": {"in_features": 8, "out_features": 1},
                          "inputs": {"input": "act.output"}})
    data["graph"] = [n for n in data["graph"] if n["name"] != "prob"]
    data["outputs"] = {"click": "head.output", "spend": "reg.output"}
    data["loss"] = [
        {"type": "torch.nn.functional.binary_cross_entropy_with_logits",
         "inputs": {"input": "click", "target": "clicked"},
         "weight": 1.0, "name": "ctr"},
        {"type": "torch.nn.MSELoss", "inputs": {"input": "spend", "target": "amount"}, "weight": 0.25},
    ]
    return data


def test_multi_loss_list_form():
    spec = load_model_spec(mmoe())
    assert isinstance(spec.loss, list) and len(spec.losses) == 2
    first, second = spec.losses
    assert (first.name, first.weight, first.inputs.input, first.inputs.target) == ("ctr", 1.0, "click", "clicked")
    assert (second.name, second.weight, second.inputs.input, second.inputs.target) == (None, 0.25, "spend", "amount")


def test_multi_loss_errors_are_indexed():
    data = mmoe()
    data["loss"][1]["inputs"]["input"] = "spnd"
    issue = issue_at(issues_of(data), "loss[1].inputs.input")
    assert issue.hint == "did you mean 'spend'?"


def test_multi_loss_unknown_key_is_indexed():
    data = mmoe()
    data["loss"][0]["wieght"] = data["loss"][0].pop("weight")
    assert issue_at(issues_of(data), "loss[0].wieght").hint == "did you mean 'weight'?"


@pytest.mark.parametrize("weight", [0, -1.0])
def test_multi_loss_weight_must_be_positive(weight):
    data = mmoe()
    data["loss"][1]["weight"] = weight
    assert issue_at(issues_of(data), "loss[1].weight")


def test_multi_loss_task_names_must_differ():
    data = mmoe()
    data["loss"][1]["name"] = "ctr"
    issue = issue_at(issues_of(data), "loss[1].name")
    assert "'ctr'" in issue.message


def test_multi_loss_each_needs_its_output():
    data = mmoe()
    del data["loss"][0]["inputs"]["input"]
    assert issue_at(issues_of(data), "loss[0].inputs.input")


def test_multi_loss_unknown_type_is_indexed():
    data = mmoe()
    data["loss"][1]["type"] = "torch.nn.MSELos"
    issue = issue_at(issues_of(data, check=True), "loss[1].type")
    assert issue.hint == "did you mean 'torch.nn.MSELoss'?"


# ----------------------------------------------------------------------------------------------
# modules and arc.stack (torch-free rules)


def with_block(count=2) -> dict:
    data = mlp()
    data["modules"] = {
        "ResidualBlock": {
            "inputs": ["z"],
            "graph": [
                {"name": "fc", "type": "torch.nn.Linear", "params": {"in_features": 8, "out_features": 8},
                 "inputs": {"input": "z"}},
                {"name": "add", "type": "torch.add", "inputs": ["z", "fc.output"]},
            ],
            "outputs": {"output": "add.output"},
        }
    }
    data["graph"].insert(2, {"name": "blocks", "type": "arc.stack",
                             "params": {"module": "ResidualBlock", "count": count}, "inputs": {"z": "act.output"}})
    data["graph"][3]["inputs"] = {"input": "blocks.output"}
    return data


def test_modules_and_stack_load():
    spec = load_model_spec(with_block())
    assert list(spec.modules) == ["ResidualBlock"]
    assert spec.graph[2].params == {"module": "ResidualBlock", "count": 2}


def test_stack_of_unknown_module_suggests():
    data = with_block()
    data["graph"][2]["params"]["module"] = "ResidualBlok"
    issue = issue_at(issues_of(data), "graph[2].params.module")
    assert issue.hint == "did you mean 'ResidualBlock'?"


@pytest.mark.parametrize("count", [0, -2, "three", True])
def test_stack_count_must_be_a_positive_integer(count):
    assert issue_at(issues_of(with_block(count)), "graph[2].params.count")


def nested_stacks(inner: int, outer: int) -> dict:
    """``with_block`` whose main graph stacks ``outer`` copies of a module stacking ``inner`` ResidualBlocks."""
    data = with_block()
    data["modules"]["Tower"] = {"inputs": ["z"], "outputs": {"output": "blocks.output"}, "graph": [
        {"name": "blocks", "type": "arc.stack", "params": {"module": "ResidualBlock", "count": inner},
         "inputs": {"z": "z"}}]}
    data["graph"][2]["params"] = {"module": "Tower", "count": outer}
    return data


def test_a_stack_of_a_trillion_copies_is_refused_at_once():
    started = time.perf_counter()
    issue = issue_at(issues_of(with_block(10**12), check=True), "graph[2].params.count")
    assert "1,000,000,000,000 copies is more than the 1,000" in issue.message
    assert time.perf_counter() - started < 2.0


def test_nested_stacks_multiply_and_are_refused_before_anything_is_built():
    started = time.perf_counter()  # 1,000 x 1,000 blocks: the builder made ~9,000 Linear layers twice first
    issue = issue_at(issues_of(nested_stacks(1000, 1000), check=True), "graph[2].params.count")
    assert issue.message == "the stacks build more than 10,000 blocks in all" and "multiply" in issue.hint
    assert time.perf_counter() - started < 2.0
    assert load_spec(nested_stacks(9, 9), check=False).model is not None  # 9 + 81 blocks: fine


def test_module_node_of_unknown_module():
    data = with_block()
    data["graph"][2]["type"] = "module.ResidualBlok"
    data["graph"][2]["params"] = {}
    issue = issue_at(issues_of(data), "graph[2].type")
    assert issue.hint == "did you mean 'ResidualBlock'?"


def test_reference_inside_a_module_is_checked():
    data = with_block()
    data["modules"]["ResidualBlock"]["graph"][1]["inputs"] = ["z", "fcc.output"]
    issue = issue_at(issues_of(data), "modules.ResidualBlock.graph[1].inputs[1]")
    assert issue.hint == "did you mean 'fc.output'?"


def test_a_module_may_not_use_itself():
    data = with_block()
    data["modules"]["ResidualBlock"]["graph"].append(
        {"name": "again", "type": "module.ResidualBlock", "inputs": {"z": "add.output"}})
    data["modules"]["ResidualBlock"]["outputs"] = {"output": "again.output"}
    assert any("uses itself" in i.message for i in issues_of(data))


# ----------------------------------------------------------------------------------------------
# YAML reading: 1e-5 numbers, duplicate keys


def test_scientific_notation_is_a_float(tmp_path):
    path = write(tmp_path, """
        inputs:
          x: {dtype: float32, shape: [null, 3], columns: [a, b, c]}
        graph:
          - name: norm
            type: torch.nn.LayerNorm
            params: {normalized_shape: 3, eps: 1e-5}
            inputs: {input: x}
          - name: drop
            type: torch.nn.Dropout
            params: {p: 5E-1}
            inputs: {input: norm.output}
        outputs:
          y: drop.output
        """)
    spec = load_model_spec(path)
    eps = spec.graph[0].params["eps"]
    p = spec.graph[1].params["p"]
    assert isinstance(eps, float) and eps == 1e-5
    assert isinstance(p, float) and p == 0.5


def test_versions_and_names_keep_their_yaml_types(tmp_path):
    path = write(tmp_path, """
        version: 1
        name: "1e5"
        inputs:
          x: {dtype: float32, shape: [null, 1], columns: [a]}
        graph:
          - {name: fc, type: torch.nn.Linear, params: {in_features: 1, out_features: 1}, inputs: {input: x}}
        outputs:
          y: fc.output
        """)
    spec = load_model_spec(path)
    assert spec.version == 1 and spec.name == "1e5"


def test_duplicate_yaml_keys_are_an_error_naming_both_lines(tmp_path):
    path = write(tmp_path, """
        inputs:
          x: {dtype: float32, shape: [null, 1], columns: [a]}
        graph:
          - name: fc
            type: torch.nn.Linear
            params: {in_features: 1, out_features: 1}
            inputs: {input: x}
        outputs:
          y: fc.output
        graph:
          - name: other
            type: torch.nn.ReLU
            inputs: {input: x}
        """)
    issues = issues_of(path)
    assert len(issues) == 1
    issue = issues[0]
    assert "graph" in issue.message
    assert "lines 3 and 10" in issue.message
    assert issue.file == str(path) and issue.line == 10


def test_nested_duplicate_keys_are_an_error(tmp_path):
    path = write(tmp_path, """
        inputs:
          x: {dtype: float32, shape: [null, 1], columns: [a], dtype: float64}
        graph:
          - {name: fc, type: torch.nn.Linear, params: {in_features: 1, out_features: 1}, inputs: {input: x}}
        outputs:
          y: fc.output
        """)
    issue = issues_of(path)[0]
    assert "'dtype' is written twice" in issue.message and "lines 2 and 2" in issue.message


# ----------------------------------------------------------------------------------------------
# variants 1-9 of model-spec.md


def test_variant1_loss_in_the_trainer_file():
    model = load_model_spec(VARIANTS / "v1_model_no_loss.yaml")
    assert model.loss is None and model.losses == []
    trainer = load_trainer_spec(VARIANTS / "v1_trainer_with_loss.yaml")
    loss = trainer.loss
    assert isinstance(loss, LossSpec)
    # pred: model.logits / target: churned -> inputs: {input: logits, target: churned}
    assert (loss.type, loss.inputs.input, loss.inputs.target) == ("torch.nn.BCEWithLogitsLoss", "logits", "churned")
    assert loss.params == {"pos_weight": 2.0}
    merged = merge_loss(model, trainer)
    assert merged.losses == [loss]
    assert model.loss is None  # the original is left as it was


def test_variant1_different_losses_in_both_files_are_an_error():
    model = load_model_spec(mlp())
    trainer = load_trainer_spec(VARIANTS / "v1_trainer_with_loss.yaml")
    with pytest.raises(SpecError) as info:
        merge_loss(model, trainer)
    assert info.value.issues[0].path == "loss"
    assert "differ" in info.value.issues[0].message


@pytest.mark.parametrize("key", ["pred", "prediction", "input"])
def test_variant1_loss_output_aliases(key):
    trainer = {"optimizer": {"type": "torch.optim.Adam", "lr": 0.01}, "config": {"epochs": 1, "batch_size": 2},
               "loss": {"type": "torch.nn.MSELoss", key: "model.logits", "target": "y"}}
    loss = load_trainer_spec(trainer).loss
    assert (loss.inputs.input, loss.inputs.target) == ("logits", "y")


@pytest.mark.parametrize("key", ["pred", "prediction", "input"])
def test_variant1_loss_inputs_pred_is_the_same_as_input(key):
    # model-spec.md variant 1: inputs: {pred: model.<output>, target: <column>} in the trainer spec
    trainer = {"optimizer": {"type": "torch.optim.Adam", "lr": 0.01}, "config": {"epochs": 1, "batch_size": 2},
               "loss": {"type": "torch.nn.BCEWithLogitsLoss", "inputs": {key: "model.logits", "target": "y"}}}
    loss = load_trainer_spec(trainer).loss
    assert (loss.inputs.input, loss.inputs.target) == ("logits", "y")
    merged = merge_loss(load_model_spec({**mlp(), "loss": None}), load_trainer_spec(trainer))
    assert merged.losses[0].inputs.input == "logits"


def test_variant1_loss_inputs_pred_and_input_both_written_must_agree():
    trainer = {"optimizer": {"type": "torch.optim.Adam", "lr": 0.01}, "config": {"epochs": 1, "batch_size": 2},
               "loss": {"type": "torch.nn.MSELoss", "inputs": {"pred": "model.logits", "input": "prediction"}}}
    with pytest.raises(SpecError) as info:
        load_trainer_spec(trainer)
    assert info.value.issues[0].path == "loss.inputs.pred" and "contradicts" in info.value.issues[0].message


def test_variant2_training_section():
    loaded = load_spec(VARIANTS / "v2_training_section.yaml")
    assert loaded.kind == "model+trainer"
    model, trainer = loaded.model, loaded.trainer
    assert model.name == "pima-single-file"  # model_name -> name
    assert [(lo.type, lo.inputs.input, lo.inputs.target) for lo in model.losses] == [
        ("torch.nn.functional.binary_cross_entropy_with_logits", "logits", "outcome")]
    assert trainer.loss is None  # moved to the model, its canonical place
    assert (trainer.optimizer.type, trainer.optimizer.lr) == ("torch.optim.Adam", 0.001)
    cfg = trainer.config
    assert (cfg.epochs, cfg.batch_size, cfg.validation_split, cfg.metrics) == (30, 32, 0.25, ["accuracy", "auc"])
    assert load_model_spec(VARIANTS / "v2_training_section.yaml") == model


def test_variant2_training_loss_must_read_an_output(tmp_path):
    text = (VARIANTS / "v2_training_section.yaml").read_text().replace("input: logits", "input: logit")
    path = tmp_path / "single.yaml"
    path.write_text(text)
    issues = issues_of(path, check=True)
    issue = [i for i in issues if i.path.endswith("loss.inputs.input")]
    assert issue, [(i.path, i.message) for i in issues]
    assert issue[0].hint == "did you mean 'logits'?"


def test_variant2_training_loss_target_must_not_be_a_feature(tmp_path):
    text = (VARIANTS / "v2_training_section.yaml").read_text().replace("target: outcome", "target: glucose")
    path = tmp_path / "single.yaml"
    path.write_text(text)
    issues = issues_of(path, check=True)
    assert any(i.path.endswith("loss.inputs.target") and "glucose" in i.message for i in issues), \
        [(i.path, i.message) for i in issues]


def test_variant2_errors_name_the_training_section(tmp_path):
    text = (VARIANTS / "v2_training_section.yaml").read_text().replace(
        "torch.nn.functional.binary_cross_entropy_with_logits", "torch.nn.BCEWithLogitsLos")
    path = tmp_path / "single.yaml"
    path.write_text(text)
    issues = issues_of(path, check=True)
    assert [i.path for i in issues] == ["training.loss.type"]
    assert issues[0].hint == "did you mean 'torch.nn.BCEWithLogitsLoss'?"
    type_line = next(n for n, line in enumerate(text.splitlines(), 1) if "BCEWithLogitsLos" in line)
    assert issues[0].line == type_line


def test_variant2_unknown_key_in_training_names_the_training_section():
    data = mlp()
    del data["loss"]
    data["training"] = {"optimizer": {"type": "torch.optim.Adam", "lr": 0.01}, "epochs": 2, "batch_size": 4,
                        "validaton_split": 0.2}
    issues = issues_of(data)
    assert any(i.path.startswith("training") and "validaton_split" in i.path for i in issues), \
        [(i.path, i.message) for i in issues]


def test_seed000_trainer_block_beside_the_graph():
    data = mlp()
    del data["loss"]
    del data["outputs"]["prediction"]
    data["graph"].pop()
    data["trainer"] = {"optimizer": {"type": "torch.optim.Adam", "params": {"lr": 0.001}},
                       "loss": "torch.nn.BCEWithLogitsLoss", "epochs": 50, "batch_size": 32}
    loaded = load_spec(data)
    assert loaded.model.losses[0].type == "torch.nn.BCEWithLogitsLoss"
    assert loaded.trainer.optimizer.lr == 0.001
    assert (loaded.trainer.config.epochs, loaded.trainer.config.batch_size) == (50, 32)


def test_variant3_no_loss_anywhere():
    loaded = load_spec(VARIANTS / "v3_no_loss.yaml")
    assert loaded.kind == "model"
    assert loaded.model.loss is None and loaded.model.losses == []
    assert loaded.checked.output_shapes == {"logits": "[B, 1]"}


def test_variant4_optimizer_config_alias():
    trainer = load_trainer_spec(VARIANTS / "v4_optimizer_config.yaml")
    assert trainer.optimizer.type == "torch.optim.AdamW"
    assert trainer.optimizer.lr == 0.0005
    assert trainer.optimizer.params == {"weight_decay": 0.01}


def test_variant4_contradicting_learning_rates_are_an_error():
    data = {"optimizer": {"type": "torch.optim.Adam", "lr": 0.01, "config": {"learning_rate": 0.1}},
            "config": {"epochs": 1, "batch_size": 2}}
    issues = issues_of(data)
    assert any("contradicts" in i.message and "learning_rate" in i.path for i in issues), \
        [(i.path, i.message) for i in issues]


def test_variant5_shape_null_and_dtype_aliases():
    loaded = load_spec(VARIANTS / "v5_shape_null_aliases.yaml")
    inputs = loaded.model.inputs
    assert {n: (i.dtype, i.shape) for n, i in inputs.items()} == {
        "zip_id": ("int64", [None]),
        "store_id": ("int32", [None]),
        "amounts": ("float32", [None, 2]),
        "scale": ("float64", [None, 1]),
    }
    assert loaded.checked.output_shapes == {"score": "[B, 1]"}


def test_variant6_list_of_references_as_keyword():
    loaded = load_spec(VARIANTS / "v6_list_kwarg.yaml")
    joined = loaded.model.graph[2]
    assert joined.inputs == {"tensors": ["user_tower.output", "item_tower.output"]}
    assert loaded.checked.output_shapes == {"logits": "[B, 1]"}


def test_variant6_unknown_reference_inside_the_list():
    data = load_spec(VARIANTS / "v6_list_kwarg.yaml", check=False)
    raw = data.model.model_dump(exclude_none=True)
    raw["graph"][2]["inputs"]["tensors"][1] = "item_towr.output"
    issue = issue_at(issues_of(raw), "graph[2].inputs.tensors[1]")
    assert issue.hint == "did you mean 'item_tower.output'?"


def test_variant7_nested_target_param():
    loaded = load_spec(VARIANTS / "v7_nested_target.yaml")
    params = loaded.model.graph[0].params
    assert params["encoder_layer"]["_target_"] == "torch.nn.TransformerEncoderLayer"
    assert params["num_layers"] == 2
    assert loaded.checked.output_shapes == {"logits": "[B, 1]"}


def test_variant8_scientific_numbers():
    loaded = load_spec(VARIANTS / "v8_sci_numbers.yaml")
    eps = loaded.model.graph[0].params["eps"]
    assert isinstance(eps, float) and eps == 1e-5
    opt = loaded.trainer.optimizer
    assert opt.lr == pytest.approx(3e-4)
    assert opt.params == {"eps": 1e-8, "weight_decay": 1e-5}
    assert all(isinstance(v, float) for v in opt.params.values())


def test_variant9_predictor_section_is_refused_with_a_hint():
    issues = issues_of(VARIANTS / "v9_nested_layout.yaml")
    issue = issue_at(issues, "predictor")
    assert "predictor" in issue.message
    assert issue.hint and "remove it" in issue.hint and "outputs" in issue.hint
    assert issue.line == 27


def test_variant9_nested_layout_without_predictor(tmp_path):
    text = (VARIANTS / "v9_nested_layout.yaml").read_text().split("\npredictor:")[0]
    path = tmp_path / "nested.yaml"
    path.write_text(text)
    loaded = load_spec(path)
    assert loaded.kind == "model+trainer"
    assert loaded.model.name == "pima-nested" and loaded.model.version == 1
    assert loaded.model.losses[0].inputs.input == "logits"
    assert (loaded.trainer.optimizer.lr, loaded.trainer.config.epochs) == (0.01, 5)
    assert loaded.checked.output_shapes == {"logits": "[B, 1]"}


def test_variant9_errors_name_the_model_section(tmp_path):
    text = (VARIANTS / "v9_nested_layout.yaml").read_text().split("\npredictor:")[0]
    path = tmp_path / "nested.yaml"
    path.write_text(text.replace("input: features", "input: featurs"))
    issue = issue_at(issues_of(path), "model.graph[0].inputs.input")
    assert issue.hint == "did you mean 'features'?"
    assert issue.line == 14


def test_variant9_unknown_top_level_section(tmp_path):
    data = {"model": mlp(), "trainer": {"optimizer": {"type": "torch.optim.Adam", "lr": 0.1},
                                        "config": {"epochs": 1, "batch_size": 1}},
            "evaluator": {"metrics": ["auc"]}}
    issue = issue_at(issues_of(data), "evaluator")
    assert "unknown top-level section" in issue.message
