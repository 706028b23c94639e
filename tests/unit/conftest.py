"""Fixtures shared by the unit tests: a pipeline folder and the state store of ``public.clientes`` in it."""

from __future__ import annotations

import pytest

from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore
from tests.unit.test_state_support import CLIENTES


@pytest.fixture
def layout(tmp_path) -> PipelineLayout:
    """The folder of one pipeline, ``clientes``, not created yet."""
    return PipelineLayout(tmp_path / "clientes")


@pytest.fixture
def chunk_rows() -> int:
    """Rows per chunk of the store's index: tiny, so that every test also crosses chunk boundaries. A module
    overrides this fixture for another size."""
    return 2


@pytest.fixture
def store(layout, chunk_rows) -> StateStore:
    """A state store for ``clientes`` (id, nombre, email), created empty: destiny.csv holds only the header."""
    store = StateStore(layout, chunk_rows=chunk_rows)
    store.create(CLIENTES)
    return store
