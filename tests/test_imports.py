"""What importing fakepop costs: the pytest plugin is loaded by every pytest run of an
environment where fakepop is installed, so neither it nor the package may import Trio,
trustme or cryptography until a test starts a server or makes certificates.

Each check runs in a fresh interpreter, the only place where ``sys.modules`` says what
an import pulled in.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fakepop

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("trio", "trustme", "cryptography")


def pythonpath() -> str:
    """PYTHONPATH with this checkout first, so that a child process in another
    directory imports this fakepop."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def fresh(code: str) -> dict[str, bool]:
    """Run ``code`` in a new interpreter that imports this checkout's fakepop; return
    which of HEAVY were imported when it finished."""
    env = dict(os.environ, PYTHONPATH=pythonpath())
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        assert fakepop.__file__.startswith({str(ROOT)!r}), fakepop.__file__
        print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, bool] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_importing_the_plugin_and_the_package_imports_no_trio_nor_tls_libraries() -> None:
    imported = fresh(
        """
        import pytest
        import fakepop.pytest_plugin
        import fakepop
        """
    )
    assert imported == {"trio": False, "trustme": False, "cryptography": False}


def test_the_names_that_need_no_server_import_no_trio() -> None:
    imported = fresh(
        """
        import fakepop
        from fakepop import MailStore, ServerConfig, TlsCertificates, Transcript, faults
        from fakepop import profiles, read_messages

        assert ServerConfig().autologout > 0
        assert faults.refuse_connection().stage.name == "CONNECT"
        assert MailStore({"alice": "pw"}).users == ["alice"]
        """
    )
    assert imported == {"trio": False, "trustme": False, "cryptography": False}


def test_the_server_imports_trio_but_not_the_tls_libraries() -> None:
    imported = fresh(
        """
        from fakepop import Pop3ServerThread
        import fakepop

        with Pop3ServerThread({"alice": "pw"}) as server:
            assert server.port > 0
        """
    )
    assert imported == {"trio": True, "trustme": False, "cryptography": False}


def test_certificates_import_trustme_when_first_made() -> None:
    imported = fresh(
        """
        import fakepop

        fakepop.TlsCertificates().server_context()
        """
    )
    assert imported["trustme"]
    assert imported["cryptography"]
    assert not imported["trio"]


@pytest.mark.parametrize("name", sorted(set(fakepop.__all__) - {"__version__"}))
def test_every_public_name_resolves_to_its_module_object(name: str) -> None:
    source = fakepop._SOURCES[name]
    value = getattr(fakepop, name)
    if source:
        assert value is getattr(importlib.import_module(f"fakepop.{source}"), name)
    else:
        assert value is importlib.import_module(f"fakepop.{name}")
    namespace: dict[str, object] = {}
    exec(f"from fakepop import {name}", namespace)
    assert namespace[name] is value
    assert name in dir(fakepop)


def test_the_lazy_names_are_exactly_the_public_ones() -> None:
    assert set(fakepop._SOURCES) | {"__version__"} == set(fakepop.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Pop3Client'"):
        fakepop.Pop3Client  # type: ignore[attr-defined]  # noqa: B018


def test_a_pytest_run_whose_tests_start_no_server_imports_no_trio(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin as pytest loads it, through its entry point, in a run of its own."""
    monkeypatch.setenv("PYTHONPATH", pythonpath())
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(
        f"ROOT = {str(ROOT)!r}\n"
        + """
import sys

import pytest


def test_plugin_loaded_without_trio(request):
    assert request.config.pluginmanager.has_plugin("fakepop")
    assert sys.modules["fakepop"].__file__.startswith(ROOT)
    assert "fakepop.pytest_plugin" in sys.modules
    for name in ("trio", "trustme", "cryptography"):
        assert name not in sys.modules, name


@pytest.mark.pop3({"alice": "pw"})
def test_a_marked_test_without_a_server_fixture():
    assert "trio" not in sys.modules
"""
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:asyncio", "-p", "no:trio", "-p", "no:hypothesispytest", "-p", "no:xdist"
    )
    result.assert_outcomes(passed=2)
