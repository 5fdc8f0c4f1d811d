"""fakepop.faults without a server: what each constructor builds, how the modifiers
scope and schedule a fault, seeded randomness, validation, FaultSet from many threads,
and what the malformed-reply faults make of sample reply octets.

The engine's ``fire(fault_set, stage, context)`` is driven by hand here through
``fired_at()``, the way the server calls it.
"""

from __future__ import annotations

import ast
import builtins
import enum
import inspect
import math
import random
import re
import threading
from pathlib import Path

import pytest

from fakepop import Command, ConfigError, Pop3Protocol, Reply, ServerConfig, State, faults
from fakepop._fault_engine import Fired, answer_reply, fire, plan_reply
from fakepop._fault_types import _Refuse
from fakepop.faults import (
    Close,
    Delay,
    Fault,
    FaultContext,
    FaultSet,
    Stage,
    Stall,
)
from tests.sansio import LOGIN, TOTAL, feed, lines, new_session


def fired_at(fault_set: FaultSet, stage: Stage, at: FaultContext) -> list[Fired]:
    """The faults that fire at this moment (all of them: the list takes every one)."""
    return list(fire(fault_set, stage, at))


def command(line: str) -> Command:
    keyword, space, argument = line.partition(" ")
    return Command(line.encode(), keyword.upper(), argument if space else None)


def context(
    line: str | None = None,
    *,
    session: int = 1,
    user: str | None = "alice",
    method: str | None = None,
) -> FaultContext:
    return FaultContext(session, user, None if line is None else command(line), method)


def pattern(fault: Fault, moments: int, stage: Stage | None = None, line: str = "NOOP") -> str:
    """Which of ``moments`` identical matching moments the fault fires at: "x" or "."."""
    fault_set = FaultSet()
    fault_set.add(fault)
    at = context(None if (stage or fault.stage) is Stage.CONNECT else line)
    return "".join(
        "x" if fired_at(fault_set, stage or fault.stage, at) else "." for _ in range(moments)
    )


def rewritten(fault: Fault, reply: Reply, line: str, *, session: int = 1) -> bytes:
    fault_set = FaultSet()
    fault_set.add(fault)
    at = context(line, session=session)
    fired = fired_at(fault_set, Stage.REPLY, at)
    assert fired, f"{fault} did not fire for {line}"
    return plan_reply(reply, fired, at).octets


# -- what the constructors build ---------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "stage", "action", "description"),
    [
        (faults.refuse_connection(), Stage.CONNECT, Close(), "refuse the connection"),
        (faults.refuse_connection(reset=True), Stage.CONNECT, Close(True), "refuse the connection"),
        (faults.close_before("RETR"), Stage.COMMAND, Close(), "close before answering RETR"),
        (
            faults.close_before(reset=True),
            Stage.COMMAND,
            Close(True),
            "reset before answering any command",
        ),
        (faults.close_after("dele"), Stage.REPLY, Close(), "close after answering DELE"),
        (faults.delay_greeting(3), Stage.CONNECT, Delay(3), "delay the greeting 3 s"),
        (faults.latency(1, jitter=0.5), Stage.REPLY, Delay(1, 0.5), "latency 1 s (+ up to 0.5 s)"),
        (faults.stall(), Stage.CONNECT, Stall(), "stall before the greeting"),
        (faults.stall("RETR", "TOP"), Stage.COMMAND, Stall(), "stall at RETR/TOP"),
    ],
)
def test_constructors_say_when_they_act_and_what_they_do(
    fault: Fault, stage: Stage, action: object, description: str
) -> None:
    assert (fault.stage, fault.action, str(fault)) == (stage, action, description)
    assert (fault.first, fault.limit, fault.probability) == (1, None, 1.0)


def test_command_lists_become_upper_case_keywords() -> None:
    assert faults.error("retr", "Top").keywords == {"RETR", "TOP"}
    assert faults.error().keywords is None  # any command
    assert faults.cut_payload(after_bytes=5).keywords == {"RETR", "TOP"}
    assert faults.missing_terminator().keywords == {"RETR"}
    assert faults.unstuffed_dots().keywords == {"RETR", "TOP"}
    assert faults.bare_lf().keywords == {"RETR"}
    assert faults.wrong_list_size().keywords == {"LIST"}
    assert faults.changing_uids().keywords == {"UIDL"}
    assert faults.lock_failure().keywords is None  # every login method
    assert faults.lock_failure().stage is Stage.LOGIN
    assert faults.hook(lambda context: None, "dele").keywords == {"DELE"}


def test_descriptions_name_the_fault_for_the_transcript() -> None:
    assert str(faults.error("PASS", code="SYS/TEMP")) == "-ERR [SYS/TEMP] to PASS"
    assert str(faults.cut_payload(after_bytes=10)) == "close after 10 octets of the RETR/TOP reply"
    assert str(faults.cut_payload("RETR", after_bytes=0, reset=True)) == (
        "reset after 0 octets of the RETR reply"
    )
    assert str(faults.lock_failure()) == "lock failure [IN-USE]"
    assert str(faults.auth_failure()) == "authentication failure [AUTH]"
    assert str(faults.login_too_soon()) == "login refused [LOGIN-DELAY]"

    def refuse_big(context: FaultContext) -> None:
        return None

    assert str(faults.hook(refuse_big)) == "hook refuse_big"


# -- modifiers -----------------------------------------------------------------------------
def test_modifiers_return_new_faults_and_leave_the_original_alone() -> None:
    base = faults.error("RETR")
    scoped = base.for_user("bob").in_session(2).matching(r"RETR 1").nth(3).times(2)
    assert (base.user, base.session, base.pattern, base.first, base.limit) == (
        None, None, None, 1, None,
    )
    assert (scoped.user, scoped.session, scoped.pattern, scoped.first, scoped.limit) == (
        "bob", 2, "RETR 1", 3, 2,
    )
    assert scoped.once().limit == 1
    assert scoped.always().limit is None
    assert faults.error().on("retr", "dele").keywords == {"RETR", "DELE"}
    with pytest.raises(AttributeError):
        base.user = "eve"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fault", "at", "fires"),
    [
        (faults.error("RETR"), context("RETR 1"), True),
        (faults.error("RETR"), context("DELE 1"), False),
        (faults.error("RETR").for_user("bob"), context("RETR 1"), False),
        (faults.error("RETR").for_user("alice"), context("RETR 1"), True),
        (faults.error().in_session(2), context("NOOP"), False),
        (faults.error().in_session(2), context("NOOP", session=2), True),
        (faults.error().matching(r"RETR [0-9]+"), context("RETR 12"), True),
        (faults.error().matching(r"RETR [0-9]+"), context("RETR"), False),
        (faults.error().matching(r"RETR [0-9]+"), context("RETR 1 2"), False),  # fullmatch
    ],
)
def test_where_a_fault_applies(fault: Fault, at: FaultContext, fires: bool) -> None:
    fault_set = FaultSet()
    armed = fault_set.add(fault)
    assert bool(fired_at(fault_set, Stage.COMMAND, at)) is fires
    assert armed.seen == armed.fired == int(fires)  # a moment that does not match is not seen


@pytest.mark.parametrize(
    ("fault", "at", "fires"),
    [
        (faults.lock_failure(), context("PASS secret", method="USER"), True),
        (faults.lock_failure(), context("APOP alice 0123", method="APOP"), True),
        (faults.lock_failure(), context("AUTH PLAIN", method="PLAIN"), True),
        (faults.lock_failure().on("APOP"), context("PASS secret", method="USER"), False),
        (faults.lock_failure().on("APOP"), context("APOP alice 0123", method="APOP"), True),
        (faults.lock_failure().on("PASS"), context("PASS secret", method="USER"), True),
        (faults.lock_failure().on("CRAM-MD5"), context("AUTH CRAM-MD5", method="CRAM-MD5"), True),
        (faults.lock_failure().on("CRAM-MD5"), context("AUTH PLAIN", method="PLAIN"), False),
        (faults.lock_failure().on("AUTH"), context("AUTH PLAIN", method="PLAIN"), True),
        (faults.auth_failure().for_user("bob"), context("PASS x", method="USER"), False),
    ],
)
def test_where_a_login_fault_applies(fault: Fault, at: FaultContext, fires: bool) -> None:
    """Login faults act at the login moment (credentials right, mailbox not locked
    yet), for every method; ``on()`` names the command or the method."""
    fault_set = FaultSet()
    fault_set.add(fault)
    assert bool(fired_at(fault_set, Stage.LOGIN, at)) is fires
    assert fired_at(fault_set, Stage.COMMAND, at) == []  # never before the check


def test_faults_fire_only_at_their_own_stage() -> None:
    fault_set = FaultSet()
    fault_set.add(faults.close_after("RETR"))
    assert fired_at(fault_set, Stage.COMMAND, context("RETR 1")) == []
    assert fired_at(fault_set, Stage.CONNECT, context()) == []
    assert len(fired_at(fault_set, Stage.REPLY, context("RETR 1"))) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (faults.error(), "xxxxxxxx"),
        (faults.error().once(), "x......."),
        (faults.error().times(2), "xx......"),
        (faults.error().nth(3), "..xxxxxx"),
        (faults.error().nth(2).once(), ".x......"),
        (faults.error().nth(2).times(3), ".xxx...."),
        (faults.error().once().always(), "xxxxxxxx"),
    ],
)
def test_how_often_a_fault_fires(fault: Fault, expected: str) -> None:
    assert pattern(fault, 8) == expected


def test_seen_and_fired_count_matching_moments_and_firings() -> None:
    fault_set = FaultSet()
    armed = fault_set.add(faults.error("RETR").nth(2).once())
    for line in ["RETR 1", "DELE 1", "RETR 2", "RETR 3", "NOOP"]:
        fired_at(fault_set, Stage.COMMAND, context(line))
    assert (armed.seen, armed.fired) == (3, 1)


def test_a_seeded_probability_fires_in_the_same_pattern_every_run() -> None:
    fault = faults.error().with_probability(0.5, seed=1)
    first, second = pattern(fault, 40), pattern(fault, 40)
    assert first == second
    rng = random.Random(1)
    assert first == "".join("x" if rng.random() < 0.5 else "." for _ in range(40))
    assert 5 < first.count("x") < 35
    assert pattern(faults.error().with_probability(0.5, seed=2), 40) != first


def test_probability_bounds_and_limits_combine() -> None:
    assert pattern(faults.error().with_probability(0.0), 20) == "." * 20
    assert pattern(faults.error().with_probability(1.0, seed=9), 5) == "xxxxx"
    limited = pattern(faults.error().with_probability(0.5, seed=1).times(2), 40)
    assert limited.count("x") == 2


def test_latency_jitter_is_drawn_from_its_seed() -> None:
    def jitters(seed: int) -> list[float]:
        fault_set = FaultSet()
        fault_set.add(faults.latency(1.0, jitter=0.5, seed=seed))
        return [fired_at(fault_set, Stage.REPLY, context("NOOP"))[0].jitter for _ in range(5)]

    rng = random.Random(7)
    assert jitters(7) == [rng.uniform(0.0, 0.5) for _ in range(5)] == jitters(7)
    assert jitters(8) != jitters(7)
    assert all(0.0 <= value <= 0.5 for value in jitters(8))


# -- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: faults.error().nth(0),
        lambda: faults.error().nth(-1),
        lambda: faults.error().nth(True),
        lambda: faults.error().nth(1.5),
        lambda: faults.error().times(0),
        lambda: faults.error().in_session(0),
        lambda: faults.error().with_probability(1.5),
        lambda: faults.error().with_probability(-0.1),
        lambda: faults.cut_payload(after_bytes=-1),
        lambda: faults.bandwidth(0),
        lambda: faults.bandwidth(-10),
        lambda: faults.slice_replies(size=0),
        lambda: faults.refuse_connection().on("RETR"),
        lambda: faults.delay_greeting(1).on("USER"),
    ],
)
def test_nonsense_is_refused_when_the_fault_is_built(build: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()  # type: ignore[operator]


def test_a_bad_regular_expression_is_refused_at_once() -> None:
    with pytest.raises(re.error):
        faults.error().matching("RETR (")


@pytest.mark.parametrize(
    "build",
    [
        lambda: faults.delay_greeting(-1),
        lambda: faults.latency(-0.5),
        lambda: faults.latency(1, jitter=-1),
        lambda: faults.latency(math.nan),
        lambda: faults.slice_replies(size=1, pause=-0.1),
    ],
    ids=["delay_greeting", "latency", "jitter", "latency-nan", "slice-pause"],
)
def test_negative_durations_are_refused_when_the_fault_is_built(build: object) -> None:
    """Like bandwidth(0) and cut_payload(after_bytes=-1), a negative wait must fail where
    it is written, not later inside the server (trio.sleep(-1) raises ValueError in the
    session: an error inside the server instead of a fault)."""
    with pytest.raises(ValueError):  # noqa: PT011
        build()  # type: ignore[operator]


def test_fault_set_add_takes_only_faults() -> None:
    with pytest.raises(TypeError, match="takes a Fault"):
        FaultSet().add("error RETR")  # type: ignore[arg-type]


# -- FaultSet --------------------------------------------------------------------------------
def test_fault_set_add_remove_clear() -> None:
    fault_set = FaultSet()
    assert not fault_set
    first = fault_set.add(faults.error("RETR"))
    second = fault_set.add(faults.error("RETR"))  # the same fault twice: two armed faults
    assert len(fault_set) == 2
    assert list(fault_set) == [first, second]
    first.remove()
    first.remove()  # a second time does nothing
    assert list(fault_set) == [second]
    fault_set.remove(first)
    fault_set.clear()
    assert not fault_set
    assert fired_at(fault_set, Stage.COMMAND, context("RETR 1")) == []


def test_faults_fire_in_the_order_they_were_added() -> None:
    fault_set = FaultSet()
    slow = fault_set.add(faults.latency(1))
    cut = fault_set.add(faults.cut_payload(after_bytes=3))
    fired = fired_at(fault_set, Stage.REPLY, context("RETR 1"))
    assert [item.armed for item in fired] == [slow, cut]


def test_fault_set_is_safe_to_change_from_many_threads_while_firing() -> None:
    fault_set = FaultSet()
    keeper = fault_set.add(faults.error("NOOP"))
    stop = threading.Event()
    failures: list[BaseException] = []

    def fire() -> None:
        try:
            while not stop.is_set():
                fired = fired_at(fault_set, Stage.COMMAND, context("NOOP"))
                assert keeper in [item.armed for item in fired]
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    def churn() -> None:
        try:
            for _ in range(2000):
                fault_set.add(faults.error("NOOP")).remove()
        except BaseException as exc:  # pragma: no cover
            failures.append(exc)

    firing = threading.Thread(target=fire)
    churners = [threading.Thread(target=churn) for _ in range(4)]
    firing.start()
    for thread in churners:
        thread.start()
    for thread in churners:
        thread.join()
    stop.set()
    firing.join()
    assert failures == []
    assert list(fault_set) == [keeper]
    assert keeper.fired == keeper.seen > 0


# -- malformed replies: the rewrite functions on sample octets ----------------------------------
RETR = Reply(b"+OK 30 octets\r\n", b"Subject: x\r\n\r\n..dot\r\n..\r\nend\r\n.\r\n", lines=5)
LIST_ALL = Reply(b"+OK 2 messages (150 octets)\r\n", b"1 100\r\n2 50\r\n.\r\n", lines=2)
UIDL_ALL = Reply(b"+OK Unique-ID listing follows\r\n", b"1 uid-a\r\n2 uid-b\r\n.\r\n", lines=2)


def test_missing_terminator_drops_only_the_dot_line() -> None:
    broken = rewritten(faults.missing_terminator(), RETR, "RETR 1")
    assert broken == bytes(RETR)[:-3]
    assert broken.endswith(b"\r\nend\r\n")
    single = Reply(b"-ERR no such message\r\n")
    assert rewritten(faults.missing_terminator(), single, "RETR 9") == bytes(single)


def test_unstuffed_dots_sends_dot_lines_as_they_are_stored() -> None:
    broken = rewritten(faults.unstuffed_dots(), RETR, "RETR 1")
    assert broken == b"+OK 30 octets\r\nSubject: x\r\n\r\n.dot\r\n.\r\nend\r\n.\r\n"
    first_line_dot = Reply(b"+OK\r\n", b"..starts\r\nx\r\n.\r\n")
    assert rewritten(faults.unstuffed_dots(), first_line_dot, "RETR 1") == (
        b"+OK\r\n.starts\r\nx\r\n.\r\n"
    )


def test_unstuffed_dots_keeps_the_terminator_of_an_empty_listing() -> None:
    """An empty multi-line reply (LIST or UIDL of an empty mailbox) has no dot-stuffed
    line to unstuff; the rewrite must not eat the terminating dot."""
    empty = Reply(b"+OK 0 messages (0 octets)\r\n", b".\r\n")
    assert rewritten(faults.unstuffed_dots("LIST"), empty, "LIST") == bytes(empty)


def test_wrong_list_size_shifts_every_size_and_nothing_else() -> None:
    assert rewritten(faults.wrong_list_size(), LIST_ALL, "LIST") == (
        b"+OK 2 messages (150 octets)\r\n1 101\r\n2 51\r\n.\r\n"
    )
    assert rewritten(faults.wrong_list_size(delta=-60), LIST_ALL, "LIST") == (
        b"+OK 2 messages (150 octets)\r\n1 40\r\n2 0\r\n.\r\n"
    )
    shifted = rewritten(faults.wrong_list_size(delta=5), Reply(b"+OK 2 50\r\n"), "LIST 2")
    assert shifted == b"+OK 2 55\r\n"


def test_bare_lf_replaces_every_crlf() -> None:
    broken = rewritten(faults.bare_lf(), RETR, "RETR 1")
    assert b"\r" not in broken
    assert broken == bytes(RETR).replace(b"\r\n", b"\n")


def test_garbage_line_replaces_the_status_line_only() -> None:
    broken = rewritten(faults.garbage_line("RETR", line=b"\x00junk"), RETR, "RETR 1")
    assert broken == b"\x00junk\r\n" + RETR.payload  # type: ignore[operator]


def test_overlong_line_pads_the_status_line_to_the_given_length() -> None:
    broken = rewritten(faults.overlong_line("USER", length=600), Reply(b"+OK hi\r\n"), "USER a")
    assert len(broken) == 600
    assert broken.startswith(b"+OK hi")
    assert broken.endswith(b"x\r\n")
    multi = rewritten(faults.overlong_line("RETR"), RETR, "RETR 1")
    status, _, payload = multi.partition(b"\r\n")
    assert len(status) + 2 == 4096
    assert payload == RETR.payload


def test_changing_uids_differ_per_session_and_stay_put_within_one() -> None:
    one = rewritten(faults.changing_uids(), UIDL_ALL, "UIDL", session=1)
    two = rewritten(faults.changing_uids(), UIDL_ALL, "UIDL", session=2)
    assert one == b"+OK Unique-ID listing follows\r\n1 uid-a.s1\r\n2 uid-b.s1\r\n.\r\n"
    assert two == b"+OK Unique-ID listing follows\r\n1 uid-a.s2\r\n2 uid-b.s2\r\n.\r\n"
    assert rewritten(faults.changing_uids(), Reply(b"+OK 2 uid-b\r\n"), "UIDL 2") == (
        b"+OK 2 uid-b.s1\r\n"
    )


def test_changing_uids_keeps_long_uids_unique_and_valid() -> None:
    """UIDs may be 70 characters long (RFC 1939); changed ones must still be at most 70
    and still tell the messages apart."""
    first, second = "A" + "x" * 69, "B" + "x" * 69
    listing = Reply(b"+OK\r\n", f"1 {first}\r\n2 {second}\r\n.\r\n".encode())
    lines = rewritten(faults.changing_uids(), listing, "UIDL").split(b"\r\n")[1:3]
    uids = [line.split(b" ")[1] for line in lines]
    assert all(len(uid) <= 70 for uid in uids)
    assert uids[0] != uids[1], uids


def test_a_reply_plan_combines_the_faults_that_fired() -> None:
    """Latency adds up, a bandwidth limit sets the write size and the pauses, and a cut
    shortens the (already rewritten) octets and closes afterwards."""
    fault_set = FaultSet()
    for fault in (
        faults.latency(0.5),
        faults.latency(0.25),
        faults.bandwidth(100),
        faults.bare_lf("RETR"),
        faults.cut_payload(after_bytes=10, reset=True),
    ):
        fault_set.add(fault)
    at = context("RETR 1")
    plan = plan_reply(RETR, fired_at(fault_set, Stage.REPLY, at), at)
    assert plan.delay == pytest.approx(0.75)
    assert plan.chunk == 10
    assert plan.pause_after(10) == pytest.approx(0.1)
    assert plan.octets == bytes(RETR).replace(b"\r\n", b"\n")[:10]
    assert plan.close == faults.Close(reset=True)
    quiet = plan_reply(RETR, [], at)
    assert (quiet.octets, quiet.delay, quiet.chunk, quiet.close) == (bytes(RETR), 0.0, None, None)


# -- hooks that answer ---------------------------------------------------------------
def answered(result: object, line: str = "UIDL") -> Fired:
    """What fires when a hook for ``line`` returns ``result``."""
    fault_set = FaultSet()
    fault_set.add(faults.hook(lambda context: result))  # type: ignore[arg-type,return-value]
    (fired,) = fired_at(fault_set, Stage.COMMAND, context(line))
    return fired


def test_a_hook_answer_becomes_a_reply_stuffed_and_terminated_by_the_engine() -> None:
    """RFC 1939 section 3: the engine stuffs every line that starts with "." and ends
    the reply with ".": the hook gives lines, never wire octets."""
    reply = answered(faults.Answer("listing", lines=["1 a", ".x", ".", b"\xff raw"])).answer
    assert reply is not None
    assert bytes(reply) == b"+OK listing\r\n1 a\r\n..x\r\n..\r\n\xff raw\r\n.\r\n"
    assert reply.lines == 4
    assert not reply.close
    empty = answered(faults.Answer(lines=[])).answer
    assert empty is not None
    assert bytes(empty) == b"+OK\r\n.\r\n"
    assert empty.lines == 0


def test_a_hook_may_answer_with_a_plus_ok_line() -> None:
    for result, status in (("+OK 2 320", b"+OK 2 320\r\n"), ("+OK", b"+OK\r\n")):
        fired = answered(result, "STAT")
        assert fired.action == faults.Answer(result.removeprefix("+OK").strip())
        assert fired.refusal is None
        reply = fired.answer
        assert reply is not None
        assert (reply.status, reply.payload) == (status, None)
    assert answered("-ERR no").answer is None  # a refusal, as before


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: faults.Answer("two\r\nlines"), "no CR or LF"),
        (lambda: faults.Answer("bare\nLF"), "no CR or LF"),
        (lambda: faults.Answer(lines=["fine", "not\rfine"]), "no CR or LF"),
        (lambda: faults.Answer(lines=[b"x\r\n"]), "no CR or LF"),
        (lambda: faults.Answer("x" * 507), "most 512 octets"),
        (lambda: faults.Answer("\u00e9" * 254), "most 512 octets"),  # 508 octets in UTF-8
    ],
)
def test_an_answer_that_cannot_be_sent_is_refused_when_it_is_made(
    build: object, problem: str
) -> None:
    """RFC 1939 section 3: a status line is one line of at most 512 octets with CRLF,
    and no payload line may break the framing; a hook that builds such an Answer
    raises ConfigError at once, where it wrote it."""
    with pytest.raises(ConfigError, match=problem):
        build()  # type: ignore[operator]


def test_an_answer_at_the_status_line_limit_is_sent_whole() -> None:
    reply = answered(faults.Answer("x" * 506), "NOOP").answer  # +OK, space, 506, CRLF
    assert reply is not None
    assert len(reply.status) == 512
    assert reply.status.endswith(b"x\r\n")


def test_an_answer_takes_lines_not_one_string() -> None:
    with pytest.raises(TypeError, match="list of lines"):
        faults.Answer(lines="1 a")
    with pytest.raises(TypeError, match="str or bytes"):
        faults.Answer(lines=[1])  # type: ignore[list-item]
    assert faults.Answer(lines=["a"]) == faults.Answer(lines=("a",))  # frozen, hashable
    assert hash(faults.Answer(lines=["a"]))


def answer_in_place(session: Pop3Protocol, line: bytes, text: str = "done") -> Reply:
    """Let ``line`` arrive at ``session`` and answer it with ``+OK text`` instead."""
    session.receive_data(line + b"\r\n")
    command = session.next_command()
    assert command is not None
    return session.answer_instead(command, answer_reply(faults.Answer(text)))


def test_an_answered_command_has_no_effect() -> None:
    """The answer replaces the command's effect, whatever it says: RETR marks nothing
    retrieved (so EXPIRE 0 removes nothing at QUIT), DELE marks nothing, UTF8 enters
    no UTF-8 mode."""
    session = new_session()
    assert answer_in_place(session, b"UTF8").status == b"+OK done\r\n"
    assert not session.utf8_mode
    session = new_session(config=ServerConfig(expire=0))
    feed(session, [LOGIN])
    answer_in_place(session, b"RETR 1")
    answer_in_place(session, b"DELE 2")
    assert session.state is State.TRANSACTION
    assert lines(feed(session, [b"STAT\r\n"])) == [f"+OK 3 {TOTAL}".encode()]
    assert lines(feed(session, [b"QUIT\r\n"])) == [b"+OK Logging out, 0 messages deleted"]
    mailbox = session.store["alice"]
    assert (len(mailbox), mailbox.retrieved, mailbox.deleted) == (3, (), ())


def test_an_answered_login_or_quit_leaves_the_session_truthful() -> None:
    """PASS answered +OK logs nobody in: the session needs a new USER, as after any PASS
    that did not succeed; QUIT answered +OK closes without UPDATE (RFC 1939 section 6)."""
    session = new_session()
    feed(session, [b"USER alice\r\n"])
    answer_in_place(session, b"PASS secret", "in")
    assert session.state is State.AUTHORIZATION
    assert session.maildrop is None
    assert lines(feed(session, [b"STAT\r\n"])) == [b"-ERR STAT is not allowed before login"]

    session = new_session()
    feed(session, [LOGIN + b"DELE 1\r\n"])
    reply = answer_in_place(session, b"QUIT", "bye")
    assert (reply.status, reply.close) == (b"+OK bye\r\n", True)
    assert session.state is State.CLOSED
    assert len(session.store["alice"]) == 3
    assert not session.store["alice"].locked


# -- the shape of the public API ------------------------------------------------------

PUBLIC = [getattr(faults, name) for name in faults.__all__]
CONSTRUCTORS = [value for value in PUBLIC if inspect.isfunction(value)]
#: Names an annotation may use without fakepop.faults exporting them.
GENERIC = {"Callable", "Iterator", "Sequence"}


def _public_signatures() -> list[tuple[str, inspect.Signature]]:
    found = [(function.__name__, inspect.signature(function)) for function in CONSTRUCTORS]
    for cls in (value for value in PUBLIC if inspect.isclass(value)):
        if not issubclass(cls, enum.Enum):
            found.append((cls.__name__, inspect.signature(cls)))
        for name, member in vars(cls).items():
            if inspect.isfunction(member) and not name.startswith("_"):
                found.append((f"{cls.__name__}.{name}", inspect.signature(member)))
            elif isinstance(member, property) and member.fget is not None:
                found.append((f"{cls.__name__}.{name}", inspect.signature(member.fget)))
    return found


def test_every_type_in_a_public_signature_is_exported() -> None:
    """A user can import from fakepop.faults every type its constructors, classes and
    methods take or return (HookResult for hook(), Action for Fault.action, ...)."""
    missing = set()
    for where, signature in _public_signatures():
        annotations = [signature.return_annotation]
        annotations += [
            param.annotation
            for param in signature.parameters.values()
            if not param.name.startswith("_")
        ]
        for annotation in annotations:
            if annotation is inspect.Signature.empty or annotation is None:
                continue
            assert isinstance(annotation, str), (where, annotation)
            for name in re.findall(r"[A-Za-z_][\w.]*", annotation):
                known = name in faults.__all__ or name in GENERIC or hasattr(builtins, name)
                if not known:
                    missing.add(f"{name} (in {where})")
    assert not missing, sorted(missing)
    assert {"Action", "HookResult", "Command"} <= set(faults.__all__)


def test_constructors_take_commands_then_keyword_only_options() -> None:
    """The rule of the module docstring: a required value may come first, commands come
    as *commands, and every option (a parameter with a default) is keyword-only."""
    for function in CONSTRUCTORS:
        for param in inspect.signature(function).parameters.values():
            if param.kind is param.VAR_POSITIONAL:
                assert param.name == "commands", function.__name__
            elif param.default is not param.empty:
                assert param.kind is param.KEYWORD_ONLY, f"{function.__name__}({param.name})"
            else:
                assert param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY), (
                    f"{function.__name__}({param.name})"
                )
    with pytest.raises(TypeError):
        faults.wrong_list_size(3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        faults.slice_replies(4)  # type: ignore[call-arg]
    assert faults.hook(print, "RETR", "TOP").keywords == frozenset({"RETR", "TOP"})


def test_login_too_soon_answers_login_delay() -> None:
    """Named apart from ServerConfig.login_delay, which enforces a real delay."""
    fault = faults.login_too_soon()
    assert fault.stage is Stage.LOGIN
    assert fault.action == _Refuse("Logged in too recently; try later", "LOGIN-DELAY")
    assert not hasattr(faults, "login_delay")


def _run_time_nodes(tree: ast.AST) -> list[ast.AST]:
    # Every node but those under ``if TYPE_CHECKING:``, which Python never runs: a
    # name used only in annotations (errors.py's Transcript) is no import.
    found = []
    pending = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def test_the_package_imports_without_a_cycle() -> None:
    """fakepop.faults describes, fakepop._fault_engine decides: the engine imports the
    public module and never the other way round, and no module of fakepop imports one
    that imports it back when it runs (imports for the type checker alone aside)."""
    package = Path(faults.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        imported = set()
        for node in _run_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    imported.add(node.module.split(".")[0])
                else:
                    imported.update(alias.name for alias in node.names)
        graph[path.stem] = imported
    assert "_fault_engine" in graph["_session"]
    assert "faults" in graph["_fault_engine"]

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for name in graph.get(start, set()) - seen:
            seen.add(name)
            if name == goal or reaches(name, goal, seen):
                return True
        return False

    cycles = [name for name in graph if name != "__init__" and reaches(name, name, set())]
    assert cycles == []
