"""quick_init: the frozen dataclasses made at every command get a cheaper __init__
that must behave exactly as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from fakepop import Command, Reply
from fakepop._arguments import MessageNumber
from fakepop._quick_init import quick_init

QUICK = [Reply, Command, MessageNumber]


def _twin(cls: type[Any]) -> type[Any]:
    # The same fields as a plain frozen dataclass, with the __init__ dataclass makes.
    fields = [
        (f.name, f.type, dataclasses.field(default=f.default))
        if f.default is not dataclasses.MISSING
        else (f.name, f.type)
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True)


@pytest.mark.parametrize("cls", QUICK)
def test_the_signature_is_the_dataclasss_own(cls: type[Any]) -> None:
    assert cls.__init__ is not _twin(cls).__init__
    assert inspect.signature(cls) == inspect.signature(_twin(cls))
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"),
    [
        (Reply, (b"+OK\r\n",), {}),
        (Reply, (b"+OK 3 octets\r\n", b"abc\r\n.\r\n"), {"lines": 1, "close": True}),
        (Reply, (), {"status": b"-ERR no\r\n", "delay": 1.5}),
        (Command, (b"RETR 1", "RETR", "1"), {}),
        (Command, (b"x", "", None, "too long"), {"sasl_response": True}),
        (MessageNumber, (7, "007"), {}),
    ],
)
def test_instances_hold_what_the_dataclass_would(
    cls: type[Any], args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    made = cls(*args, **kwargs)
    expected = _twin(cls)(*args, **kwargs)
    assert vars(made) == vars(expected)
    assert repr(made) == repr(expected)
    assert made == cls(*args, **kwargs)
    assert hash(made) == hash(cls(*args, **kwargs))
    assert pickle.loads(pickle.dumps(made)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.x = 1
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, first, None)


def test_replace_and_wrong_calls_behave_as_before() -> None:
    reply = Reply(b"+OK\r\n", lines=2)
    assert dataclasses.replace(reply, close=True) == Reply(b"+OK\r\n", lines=2, close=True)
    with pytest.raises(TypeError, match="status"):
        Reply()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        Reply(b"+OK\r\n", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        Command(b"x", "X", None, keyword="Y")  # type: ignore[misc]


@pytest.mark.parametrize(
    "body",
    [
        "x: list[int] = dataclasses.field(default_factory=list)",
        "x: int = dataclasses.field(default=1, kw_only=True)",
        "x: int = dataclasses.field(default=1, init=False)",
        "x: dataclasses.InitVar[int] = 0",
        "self: int = 0",
        "_set: int = 0",
    ],
)
def test_fields_it_cannot_reproduce_are_refused(body: str) -> None:
    source = f"@dataclasses.dataclass(frozen=True)\nclass Odd:\n    first: int\n    {body}\n"
    namespace: dict[str, Any] = {"dataclasses": dataclasses}
    exec(compile(source, "<odd>", "exec", dont_inherit=True), namespace)
    with pytest.raises(TypeError, match="Odd"):
        quick_init(namespace["Odd"])


def test_classes_it_cannot_reproduce_are_refused() -> None:
    @dataclasses.dataclass
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    for cls in (Mutable, Checked, Slotted, int):
        with pytest.raises(TypeError, match=cls.__name__):
            quick_init(cls)
