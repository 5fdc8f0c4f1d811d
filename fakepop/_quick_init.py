"""A cheaper ``__init__`` for the frozen dataclasses a session makes at every command.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__``, a lookup and a call per field: about half a microsecond for a
:class:`~fakepop.Reply`, paid for every reply. :func:`quick_init` gives the class an
``__init__`` with the same parameters and defaults that hands the instance its whole
``__dict__`` in one ``object.__setattr__`` call, which a frozen dataclass's own
``__setattr__`` is not asked about. Everything else (equality, ``repr``, hashing,
``dataclasses.replace``, the refusal to assign to a field) stays the dataclass's own.

The dictionary is given whole, not filled in through ``self.__dict__``: that would
make CPython 3.11 give the instance a dictionary split from its class's shared keys,
on which its specialised attribute read fails every time (about 250 machine
instructions for each read of a field, where a whole dictionary costs a few dozen).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

__all__ = ["quick_init"]

_T = TypeVar("_T")


def quick_init(cls: type[_T]) -> type[_T]:
    """Replace frozen dataclass ``cls``'s ``__init__`` by one that gives the instance
    its fields in one step; apply it above ``@dataclass(frozen=True)``.

    The new ``__init__`` must have the dataclass's own signature, so fields with a
    ``default_factory``, ``init=False``, ``kw_only`` or an ``InitVar`` are refused, as
    are ``__post_init__`` and ``__slots__``: TypeError when the class is defined.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: __post_init__ and __slots__ are not supported")
    signature = []
    items = []
    scope: dict[str, object] = {"_set": object.__setattr__}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in ("self", "_set") or field.name.startswith("_default_"):
            raise TypeError(f"{cls.__name__}: a field cannot be called {field.name}")
        if field.default is dataclasses.MISSING:
            signature.append(field.name)
        else:
            scope[f"_default_{field.name}"] = field.default
            signature.append(f"{field.name}=_default_{field.name}")
        items.append(f"{field.name!r}: {field.name}")
    source = (
        f"def __init__(self, {', '.join(signature)}):\n"
        f"    _set(self, '__dict__', {{{', '.join(items)}}})\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, scope, namespace)  # built from the field names alone
    init = namespace["__init__"]
    original = cls.__init__
    init.__annotations__ = dict(original.__annotations__)
    if inspect.signature(init) != inspect.signature(original):
        raise TypeError(f"{cls.__name__}: only plain fields are supported")
    init.__qualname__ = original.__qualname__
    init.__module__ = original.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
