"""How fast fakepop.strategies draws: examples per second, as a test pays for them.

    python benchmarks/strategies.py            # 500 examples a figure, about a minute
    python benchmarks/strategies.py --quick    # 30 a figure, a smoke test

Each figure runs a hypothesis test whose body does nothing, with generation only (no
shrinking, no database, a fixed seed), so the time is hypothesis's own plus the
strategy's: drawing the choices and building the octets with the email package. The
first figure is ``messages()`` at its default settings; the others show what its
knobs, the malformed messages, whole mailboxes and fault plans cost, next to
``st.binary()`` as the anchor (the price of hypothesis alone). The median of three
runs is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hypothesis import Phase, given, seed, settings
from hypothesis import strategies as st

if not __package__:
    # Run as `python benchmarks/strategies.py`: make `fakepop` importable from a checkout.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakepop import strategies


@dataclass(frozen=True)
class Figure:
    name: str
    strategy: st.SearchStrategy[object]


FIGURES = (
    Figure("messages(), default settings", strategies.messages()),
    Figure("messages(max_size=0): no large parts", strategies.messages(max_size=0)),
    Figure("messages(structures=['single'])", strategies.messages(structures=["single"])),
    Figure("malformed_messages()", strategies.malformed_messages()),
    Figure("mailboxes(), default settings", strategies.mailboxes()),
    Figure("fault_plans()", strategies.fault_plans()),
    Figure("st.binary(max_size=2000) (anchor)", st.binary(max_size=2000)),
)


def examples_per_second(strategy: st.SearchStrategy[object], count: int) -> tuple[float, int]:
    """Examples per second drawing ``count`` examples, and their mean size in octets
    (for messages)."""
    octets = 0

    @seed(20240603)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate])
    @given(strategy)
    def draw(value: object) -> None:
        nonlocal octets
        if isinstance(value, bytes):
            octets += len(value)

    start = time.perf_counter()
    draw()
    elapsed = time.perf_counter() - start
    return count / elapsed, octets // count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 examples a figure")
    args = parser.parse_args(argv)
    count = 30 if args.quick else 500
    runs = 1 if args.quick else 3
    print(f"| strategy | examples/s ({count} examples, median of {runs}) | mean size |")
    print("|---|---|---|")
    for figure in FIGURES:
        results = [examples_per_second(figure.strategy, count) for _ in range(runs)]
        rate = statistics.median(rate for rate, _ in results)
        size = results[0][1]
        shown = f"{size:,} octets" if size else ""
        print(f"| {figure.name} | {rate:,.0f} | {shown} |")
    if args.quick:
        print("(quick: too few examples to go by)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
