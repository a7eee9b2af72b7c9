"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from tests.tiny_bert import make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT with mean pooling (``tests.tiny_bert``), built once per session: tests read it and copy it
    to change it."""
    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny")
