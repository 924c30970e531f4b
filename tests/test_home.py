"""The specml home's layout helpers: a name turned into a path stays home (issue 15)."""

from __future__ import annotations

import pytest

from specml.errors import SpecmlError
from specml.home import home_folder, inside, slug


@pytest.mark.parametrize("name, expected", [
    ("pima", "pima"), ("../../../../outside/x", "_.._.._.._outside_x"), ("..", "_"), ("", "_"), (".hidden", "hidden"),
    ("a b/c\\d", "a_b_c_d"), ("x" * 300, "x" * 100),
])
def test_slug_is_one_safe_path_component(name, expected):
    assert slug(name) == expected
    assert "/" not in slug(name) and slug(name) not in (".", "..") and not slug(name).startswith(".")


def test_inside_refuses_a_path_that_leaves_the_home(tmp_path):
    assert inside(tmp_path / "runs" / "r1", tmp_path) == (tmp_path / "runs" / "r1").resolve()
    with pytest.raises(SpecmlError, match="is outside .*; specml writes only under its home"):
        inside(tmp_path / "runs" / ".." / ".." / "elsewhere", tmp_path)


def test_a_home_folder_that_is_a_file_is_refused(tmp_path):
    assert home_folder("models", tmp_path) == tmp_path / "models"  # not there yet: fine
    (tmp_path / "runs").write_text("x")
    with pytest.raises(SpecmlError, match=r"runs is a file, not a folder"):
        home_folder("runs", tmp_path)
