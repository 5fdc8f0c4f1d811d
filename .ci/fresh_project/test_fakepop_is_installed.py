"""The fakepop these tests run is the installed wheel, not a source tree: what they
show is what a user of the package gets."""

import os
import sys
from pathlib import Path

import pytest

import fakepop


def test_fakepop_and_its_plugin_come_from_this_environment(pytestconfig: pytest.Config) -> None:
    environment = Path(sys.prefix).resolve()
    assert sys.prefix != sys.base_prefix, "not a virtual environment"
    where = Path(fakepop.__file__).resolve()
    assert where.is_relative_to(environment), where
    assert "site-packages" in where.parts, where
    source = os.environ.get("FAKEPOP_SOURCE_TREE")
    assert source, "run through .ci/fresh_project.py"
    assert not where.is_relative_to(Path(source).resolve()), where
    # pytest loaded the plugin through the installed distribution's entry point.
    plugin = pytestconfig.pluginmanager.get_plugin("fakepop")
    assert plugin is not None
    assert Path(plugin.__file__).resolve().is_relative_to(environment)
