"""Only for a suite that runs pytest-trio in trio mode *and* has asyncio tests.

Trio mode marks every async test as a Trio test; this takes that mark off the tests
that carry pytest-asyncio's mark. A project that uses only asyncio needs none of it.
"""

import pytest


@pytest.hookimpl(trylast=True)  # after pytest-trio has marked the async tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("asyncio") is not None:
            item.own_markers[:] = [mark for mark in item.own_markers if mark.name != "trio"]
