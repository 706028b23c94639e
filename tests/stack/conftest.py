"""Fixtures for the stack tests: every pipeline a test module drives is retired when the module ends."""

from __future__ import annotations

import warnings

import pytest

from tests.stack import pipeline_driver


@pytest.fixture(scope="module", autouse=True)
def retire_pipelines_after_the_module():
    """Delete the module's connectors and drop their replication slots: the session cluster has a fixed number of
    slots, and every connector left running costs the Connect worker."""
    before = len(pipeline_driver.CREATED)
    yield
    created = pipeline_driver.CREATED[before:]
    del pipeline_driver.CREATED[before:]
    retired: set[tuple[str, str]] = set()
    for driver in created:
        ident = (driver.settings.connect_url, driver.spec.name)
        if ident in retired:
            continue
        retired.add(ident)
        try:
            driver.retire()
        except Exception as exc:  # noqa: BLE001 - a stack a test stopped on purpose has nothing left to retire
            warnings.warn(f"could not retire pipeline {driver.spec.name}: {exc}", stacklevel=1)
