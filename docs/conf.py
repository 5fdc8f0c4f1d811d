"""Sphinx configuration of fakepop's documentation.

Build it strictly, as CI does::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html

Pages are Markdown (myst-parser); the API reference comes from the docstrings
(autodoc, Google style through napoleon).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fakepop of this tree, installed or not

from sphinx.errors import PycodeError  # noqa: E402
from sphinx.pycode import ModuleAnalyzer  # noqa: E402
from sphinx.util import logging  # noqa: E402

import fakepop  # noqa: E402

logger = logging.getLogger(__name__)

#: The modules whose ``__all__`` the reference documents, in the order a bare name
#: is looked up.
PUBLIC_MODULES = ("fakepop", "fakepop.faults", "fakepop.strategies", "fakepop.errors")

project = "fakepop"
author = "The fakepop developers"
copyright = "the fakepop developers"
release = version = fakepop.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
# examples/ holds the tested files the pages include; _build is the output.
exclude_patterns = ["_build", "examples", "**/__pycache__"]

html_theme = "furo"
html_title = f"fakepop {release}"

# -- Markdown --------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
# Every heading down to ### gets an anchor, so [text](page.md#heading) links are
# checked: a link to an anchor that does not exist fails the strict build.
myst_heading_anchors = 3

# -- API reference ---------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Every reference must resolve (-n): names of fakepop that the code imports from a
# private module resolve to their public spelling (below); what remains is outside
# fakepop's documentation, and without intersphinx (the strict build needs no
# network) it cannot be linked, so it is named here.
nitpicky = True
nitpick_ignore_regex = [
    # The standard library, Trio, pytest and Hypothesis are documented elsewhere.
    ("py:.*", r"(ssl|email|os|pathlib|enum|collections|typing|types|datetime|socket"
     r"|asyncio|threading|re|random|contextlib|abc|collections\.abc)\..*"),
    ("py:.*", r"(trio|pytest|_pytest|hypothesis|sniffio|trustme|exceptiongroup)(\..*)?"),
    # Builtins and typing names as they appear in signatures.
    ("py:.*", r"(Any|Callable|Iterable|Iterator|Mapping|Sequence|Awaitable|Coroutine"
     r"|AsyncIterator|AsyncGenerator|Generator|Literal|Self|TypeAlias|NoReturn|Final"
     r"|ClassVar|Optional|Union|Pattern|Match|Path|SSLContext|Message|EmailMessage"
     r"|BaseException|Exception|AssertionError|TimeoutError|ValueError)"),
    # Internal types that show in a public signature (a Maildrop's MailboxState, the
    # kinds of a Fault's action): how fakepop is built, not what a test uses. A name
    # that has a public spelling resolves to it instead (_resolve_private below).
    ("py:class", r"fakepop\._[\w.]*"),
    # Sphinx splits the string annotation ``tuple[str, ...]`` of a dataclass field at
    # its comma and looks ``tuple[str`` up as a class.
    ("py:class", r"tuple\[str"),
]


def _public_name(target: str) -> str | None:
    """The documented spelling of a name the code imports from a private module
    (``fakepop._store.Mailbox`` or a bare ``MailStore`` -> ``fakepop.MailStore``),
    or None."""
    if "." in target and not (target.startswith("fakepop.") and "._" in target):
        return None
    name = target.rsplit(".", 1)[-1]
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if name in getattr(module, "__all__", ()):
            return f"{module_name}.{name}"
    return None


def _resolve_private(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    public = _public_name(node["reftarget"])
    if public is None:
        return None
    domain = env.get_domain("py")
    for role in ("class", "exc", "func", "data", "obj"):
        resolved = domain.resolve_xref(
            env, node["refdoc"], app.builder, role, public, node, contnode
        )
        if resolved is not None:
            return resolved
    return None


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """Show only the bases a reader can look up: a private mixin is how a class is
    built, not what it is."""
    bases[:] = [
        base
        for base in bases
        if not (getattr(base, "__module__", "").startswith("fakepop.")
                and (base.__name__.startswith("_") or _public_name(base.__name__) is None))
    ]


_ATTRIBUTE_KINDS = ("attribute", "data", "property")


def _hide_attributes_from_napoleon(  # noqa: PLR0917 - Sphinx's event signature
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """fakepop's ``#:`` comments are prose, and napoleon would read a colon in their
    first line as Google's ``type: description``: keep them away from it (runs before
    napoleon, :func:`_give_back_attributes` after)."""
    if what in _ATTRIBUTE_KINDS:
        _set_aside[name] = lines[:]
        lines[:] = []


def _give_back_attributes(  # noqa: PLR0917 - Sphinx's event signature
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what in _ATTRIBUTE_KINDS:
        own = _set_aside.pop(name, lines)
        if _is_the_types_docstring(own, obj):  # a dict constant gets dict's docstring
            own = []
        lines[:] = own or _comment_where_defined(name, obj)


def _is_the_types_docstring(lines: list[str], obj: Any) -> bool:
    doc = type(obj).__doc__
    return bool(lines) and doc is not None and lines[0].strip() == doc.strip().splitlines()[0]


_set_aside: dict[str, list[str]] = {}


def _comment_where_defined(name: str, obj: Any) -> list[str]:
    """The ``#:`` comment of a constant re-exported from a private module: autodoc
    reads comments in the module a name is documented under only."""
    short = name.rsplit(".", 1)[-1]
    for module_name in sorted(sys.modules):
        if not module_name.startswith("fakepop."):
            continue
        if getattr(sys.modules[module_name], short, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        except PycodeError:
            continue
        if ("", short) in docs:
            return list(docs[("", short)])
    return []


#: Every public name of these modules must be documented; a name also in
#: ``fakepop.__all__`` is documented there, once.
DOCUMENTED_MODULES = (
    "fakepop",
    "fakepop.faults",
    "fakepop.profiles",
    "fakepop.errors",
    "fakepop.corpus",
    "fakepop.strategies",
    "fakepop.pytest_plugin",
)


def _public_names() -> set[str]:
    package = set(fakepop.__all__)
    names = {f"fakepop.{name}" for name in package}
    for module_name in DOCUMENTED_MODULES[1:]:
        module = importlib.import_module(module_name)
        names |= {f"{module_name}.{name}" for name in module.__all__ if name not in package}
    return names


def _check_every_public_name(app: Any, env: Any) -> None:
    """A public name that the reference leaves out fails the strict build."""
    documented = set(env.get_domain("py").objects)
    for name in sorted(_public_names() - documented):
        logger.warning("%s is public but not in the API reference (docs/reference/)", name)


def setup(app: Any) -> None:
    app.connect("env-check-consistency", _check_every_public_name)
    app.connect("missing-reference", _resolve_private)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _hide_attributes_from_napoleon, priority=100)
    app.connect("autodoc-process-docstring", _give_back_attributes, priority=900)
