"""Every `specml ...` line of examples/README.md and examples/*/README.md runs as written (slow: it trains),
under the rules of ``tests/doclines.py`` (the same as README.md's and docs/'s lines)."""

from __future__ import annotations

import pytest

from doclines import commands, run_document, runnable
from testkit import EXAMPLES

READMES = [EXAMPLES / "README.md", *sorted(EXAMPLES.glob("*/README.md"))]
#: words appended to a README's lines for the suite: the collatz transformer's 40 epochs take ~6 minutes of
#: CPU (its README says so); one epoch still runs every documented line, flag and table name as written
SHORTER = {"collatz_transformer": {"specml train ": ["trainer.config.epochs=1"]}}


@pytest.mark.slow
@pytest.mark.parametrize("readme", READMES, ids=[p.parent.name for p in READMES])
def test_example_readme_commands_run_as_written(readme, tmp_path):
    if not runnable(readme):
        pytest.skip(f"{readme} shows no runnable specml line")
    failures = run_document(readme, tmp_path, SHORTER.get(readme.parent.name))
    assert not failures, f"{readme}:\n" + "\n".join(failures)


def test_every_example_readme_shows_how_to_train_and_evaluate_it():
    for readme in READMES[1:]:
        lines = [c for c, _ in commands(readme)]
        name = readme.parent.name
        assert any(c.startswith(f"specml train --model-spec examples/{name}/model.yaml") for c in lines), readme
        assert any(c.startswith("specml evaluate --model ") for c in lines), readme
    assert set(SHORTER) <= {p.parent.name for p in READMES}
