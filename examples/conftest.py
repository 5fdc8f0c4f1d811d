"""Test configuration for the examples.

fakepop's own suite runs pytest-trio in trio mode, which marks every async test as a
Trio test. The asyncio example's tests carry pytest-asyncio's mark instead; this hook
takes the Trio mark off them again. A project that uses only asyncio needs none of it.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)  # after pytest-trio has marked the async tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("asyncio") is not None:
            item.own_markers[:] = [mark for mark in item.own_markers if mark.name != "trio"]
