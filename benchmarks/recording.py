"""What transcript recording costs: one fakepop server process, with recording
switched on and off between chunks of churned sessions.

Recording costs a few per cent of a churned session's CPU, about as much as two runs
of the same server a few seconds apart differ on a shared machine. So both sides are
measured in the same process, in short alternating chunks (200 sessions, about 40 ms
of server CPU), each pair taken in the other order from the one before, so that
whatever slows the machine down for a while slows both alike. A run's figure is the
median of its pairs' figures, each the server CPU of the chunk with recording against
that of the chunk without: a pair that something else on the machine disturbed (more
often one way than the other, it turned out: a total over all chunks came out lower,
by up to a point, and spread wider) does not move it.

Only one cost of recording could escape: the chunks without recording run beside the
transcript that the chunks with it have written, and a collection of CPython's oldest
generation walks it whichever chunk runs. Such collections do not happen here: a
recorded 20,000-session churn makes none (the transcript holds only strings, bytes
and numbers, which the collector does not track).
"""

from __future__ import annotations

import statistics

from benchmarks import clients
from benchmarks.server_process import ServerProcess
from benchmarks.workloads import Scale, plans_for

__all__ = ["measure"]


def measure(scale: Scale, *, cpu: int | None, quick: bool) -> float:
    """One run's figure: per cent more server CPU per churned session with recording
    than without, the median over ``scale.recording_pairs`` pairs of chunks of
    ``scale.recording_chunk`` sessions."""
    credentials = [(plan.user, plan.password) for plan in plans_for("churn", scale)]
    costs = []
    with ServerProcess("fakepop", "churn", quick=quick, cpu=cpu) as server:
        clients.churn(server.port, credentials, max(100, scale.recording_chunk))  # warm-up
        for pair in range(scale.recording_pairs):
            used = {}
            for recording in (True, False) if pair % 2 == 0 else (False, True):
                server.record(on=recording)
                before = server.usage()
                clients.churn(server.port, credentials, scale.recording_chunk)
                used[recording] = (server.usage() - before).total
            costs.append((used[True] / used[False] - 1) * 100)
        if errors := server.errors():
            raise RuntimeError(f"fakepop: {errors} session(s) failed inside the server")
    return statistics.median(costs)
