"""Resident memory a loaded mailbox costs, measured in a fresh process.

``python -m benchmarks.store_memory fakepop|floor COUNT SIZE`` loads COUNT generated
messages of SIZE octets (each generated, stored and dropped in turn, so only the
store's copy stays), collects garbage, and prints a JSON object with the resident
set growth in octets and its ratio to COUNT * SIZE.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.bare_trio_server import FloorMailbox
from benchmarks.workloads import MailboxPlan
from fakepop import MailStore

__all__ = ["measure"]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _resident_octets() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


def _load(impl: str, plan: MailboxPlan) -> object:
    if impl == "fakepop":
        store = MailStore()
        store.add_user(plan.user, plan.password, plan.messages())
        return store
    return FloorMailbox.build(plan.password, plan.messages())


def measure(impl: str, count: int, size: int) -> float:
    """RSS growth / raw message octets, from a new interpreter."""
    command = [sys.executable, "-m", "benchmarks.store_memory", impl, str(count), str(size)]
    root = Path(__file__).resolve().parent.parent
    output = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True)
    result = json.loads(output.stdout)
    ratio = result["ratio"]
    assert isinstance(ratio, float)
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=("fakepop", "floor"))
    parser.add_argument("count", type=int)
    parser.add_argument("size", type=int)
    args = parser.parse_args()
    plan = MailboxPlan("bench", "secret", args.count, args.size)
    next(plan.messages())  # warm up the generator's own code and allocations
    gc.collect()
    before = _resident_octets()
    loaded = _load(args.impl, plan)
    gc.collect()
    growth = _resident_octets() - before
    raw = args.count * args.size
    print(json.dumps({"rss_growth": growth, "raw": raw, "ratio": growth / raw}))
    del loaded


if __name__ == "__main__":
    main()
