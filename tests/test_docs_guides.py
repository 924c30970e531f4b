"""The longest guides' `specml ...` lines run as written (slow), apart from ``tests/test_docs_commands.py`` so
that each test worker takes one of the two files."""

from __future__ import annotations

import pytest

from doclines import ROOT, run_document
from test_docs_commands import APART

GUIDES = [ROOT / "docs" / name for name in APART]


@pytest.mark.slow
@pytest.mark.parametrize("doc", GUIDES, ids=APART)
def test_guide_commands_run_as_written(doc, tmp_path):
    assert doc.exists(), doc
    failures = run_document(doc, tmp_path)
    assert not failures, f"{doc.name}:\n" + "\n".join(failures)
