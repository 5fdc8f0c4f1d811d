"""The pytest plugin (``fakepop.pytest_plugin``), tested the way a user meets it.

Each test writes a small test module that uses the plugin's fixtures with a real
client (the standard library's ``poplib``, asyncio or trio streams, every socket with
a timeout), runs pytest on it, and checks the outcomes and the report. The runs are
inline, in this process, except the pytest-xdist one, which needs worker processes.
"""

from __future__ import annotations

import textwrap

import pytest

import fakepop

# An in-process run forgets, when it ends, the modules first imported during it, but
# the fakepop package keeps the names it looked up then: a later run would import a
# second copy of a module (fakepop.faults) while the package hands out the first, and
# meet two classes named Fault; cryptography, imported again, fails outright. Importing
# every public name now, and making certificates once, keeps one copy of each.
for _name in fakepop.__all__:
    getattr(fakepop, _name)
fakepop.TlsCertificates()

# The inner runs read no ini of ours, so each gets one: warnings are errors, as here,
# and where pytest-asyncio is loaded its loop scope is set to keep it from warning.
INI = "[pytest]\nfilterwarnings = error\n"
ASYNC_INI = INI + "trio_mode = {trio_mode}\nasyncio_default_fixture_loop_scope = function\n"
# Runs in worker processes pay for every plugin's import in each: leave out the async
# ones (and hypothesis, the slowest to import) where the inner tests do not need them.
LEAN = ("-p", "no:asyncio", "-p", "no:trio", "-p", "no:hypothesispytest")


# Prepended to every inner test module.
PRELUDE = '''
import poplib

import pytest

TIMEOUT = 10


def pop3(server, user="alice", password="pw"):
    """A poplib client logged in to ``server``."""
    client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
    client.user(user)
    client.pass_(password)
    return client
'''


def run(
    pytester: pytest.Pytester,
    source: str,
    *args: str,
    trio_mode: bool = False,
    subprocess: bool = False,
    ini: str = "",
) -> pytest.RunResult:
    """Run pytest on ``source`` (after PRELUDE), with the async plugins unless LEAN is
    among ``args``; ``ini``: more lines for the ini file."""
    lean = LEAN[1] in args
    pytester.makeini(
        (INI if lean else ASYNC_INI.format(trio_mode=str(trio_mode).lower())) + ini
    )
    pytester.makepyfile(PRELUDE + textwrap.dedent(source))
    if subprocess:
        return pytester.runpytest_subprocess(*args)
    return pytester.runpytest(*args)


# -- sync tests: pop3_server, the marker, a fresh server per test -------------------


def test_sync_tests_get_a_fresh_server_each(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        ONE = "Subject: one\\n\\nFirst.\\n"
        seen = {}

        @pytest.mark.pop3({"alice": {"password": "pw", "messages": {"m1": ONE}}})
        def test_first(pop3_server):
            seen["server"] = pop3_server
            client = pop3(pop3_server)
            assert client.stat() == (1, len(ONE.replace("\\n", "\\r\\n")))
            assert client.uidl(1) == b"+OK 1 m1"
            client.dele(1)
            client.quit()
            pop3_server.wait_idle()
            assert pop3_server.store["alice"].messages == ()
            assert pop3_server.transcript.removed(user="alice") == ["m1"]

        def test_second_starts_empty(pop3_server):
            assert pop3_server is not seen["server"]
            assert not seen["server"].is_running()
            assert pop3_server.store.users == []
            assert len(pop3_server.transcript) == 0
            client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=TIMEOUT)
            client.user("alice")
            with pytest.raises(poplib.error_proto, match="AUTH"):
                client.pass_("pw")
            client.quit()
        """,
    )
    result.assert_outcomes(passed=2)


# -- an asyncio test ---------------------------------------------------------------


def test_an_asyncio_test_talks_to_pop3_server(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import asyncio

        MESSAGE = "Subject: hi\\n\\nHello.\\n"


        @pytest.mark.asyncio
        @pytest.mark.pop3({"alice": {"password": "pw", "messages": [MESSAGE]}})
        async def test_asyncio_client(pop3_server):
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(pop3_server.host, pop3_server.port), TIMEOUT
            )

            async def say(line):
                writer.write(line.encode() + b"\\r\\n")
                await writer.drain()
                return (await asyncio.wait_for(reader.readline(), TIMEOUT)).decode()

            assert (await reader.readline()).startswith(b"+OK")
            assert (await say("USER alice")).startswith("+OK")
            assert (await say("PASS pw")).startswith("+OK")
            assert await say("STAT") == f"+OK 1 {len(MESSAGE) + 3}\\r\\n"
            assert (await say("QUIT")).startswith("+OK")
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()
            await writer.wait_closed()
            # wait_idle blocks: from a running loop, it goes to a worker thread.
            await asyncio.to_thread(pop3_server.wait_idle)
            assert pop3_server.transcript.commands(user="alice") == [
                "USER alice", "PASS ****", "STAT", "QUIT"
            ]
        """,
    )
    result.assert_outcomes(passed=1)


# -- trio tests: trio_pop3_server, autojump_clock ------------------------------------

TRIO_LINES = '''
import trio

from fakepop import EndReason


class Lines:
    """Reads CRLF-terminated lines from a trio stream."""

    def __init__(self, stream):
        self.stream, self.buffer = stream, b""

    async def line(self):
        while b"\\r\\n" not in self.buffer:
            data = await self.stream.receive_some(4096)
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\\r\\n", 1)
        return line.decode()

    async def say(self, command):
        await self.stream.send_all(command.encode() + b"\\r\\n")
        return await self.line()
'''


def test_trio_tests_use_trio_pop3_server(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        TRIO_LINES
        + textwrap.dedent(
            """
        @pytest.mark.pop3({"alice": {"password": "pw", "messages": ["Subject: hi\\n\\nHi.\\n"]}})
        async def test_trio_client(trio_pop3_server):
            server = trio_pop3_server
            async with await trio.open_tcp_stream(server.host, server.port) as stream:
                lines = Lines(stream)
                assert (await lines.line()).startswith("+OK")
                for command in ("USER alice", "PASS pw", "DELE 1", "QUIT"):
                    assert (await lines.say(command)).startswith("+OK")
            await server.wait_idle()
            assert server.store["alice"].messages == ()


        @pytest.mark.pop3({"alice": "pw"}, autologout=600)
        async def test_idle_session_closed_after_ten_virtual_minutes(
            trio_pop3_server, autojump_clock
        ):
            server = trio_pop3_server
            async with await trio.open_tcp_stream(server.host, server.port) as stream:
                lines = Lines(stream)
                await lines.line()
                assert (await lines.say("USER alice")).startswith("+OK")
                assert (await lines.say("PASS pw")).startswith("+OK")
                idle_from = trio.current_time()
                with trio.move_on_after(599):
                    await stream.receive_some()
                    pytest.fail("the session ended before the autologout time")
                assert await stream.receive_some() == b""  # the server closed it
                assert trio.current_time() - idle_from == pytest.approx(600)
            await server.wait_idle()
            (session,) = server.transcript.sessions
            assert session.ended_by is EndReason.TIMEOUT
            assert not server.store["alice"].locked
            """
        ),
        trio_mode=True,
    )
    result.assert_outcomes(passed=2)


def test_a_thread_client_under_autojump_clock_fails_the_test_naming_the_cause(
    pytester: pytest.Pytester,
) -> None:
    """With autojump_clock, a client in a worker thread leaves the run with nothing
    to do while the thread works, so the clock jumps to the autologout deadline (RFC
    1939 section 3) in the middle of a session in use. The test fails saying so, and
    how to fix it (docs/howto/trio.md); tests/test_autojump_threads.py has more."""
    result = run(
        pytester,
        """
        import trio


        @pytest.mark.pop3({"alice": "pw"}, autologout=600)
        async def test_thread_client(trio_pop3_server, autojump_clock):
            def client():
                server = trio_pop3_server
                session = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
                try:
                    session.user("alice")
                    session.pass_("pw")
                    # Whatever the thread does now (here it reads), the run waits.
                    session.sock.recv(1)
                    session.noop()
                finally:
                    session.close()

            await trio.to_thread.run_sync(client)
        """,
        trio_mode=True,
    )
    result.assert_outcomes(failed=1)
    output = " ".join(result.stdout.str().split())  # lines joined where pytest cut them
    for words in [
        "UsageError: the autologout timer (600 s) ended session 1 while a task of this "
        "Trio run waited in trio.to_thread.run_sync, under a MockClock that autojumps "
        "(autojump_clock)",
        "run the client as a Trio task",
        "use a MockClock without autojump",
        "drop autojump_clock from this test",
        "(error inside the server: UsageError: the autologout timer",  # the transcript
    ]:
        assert words in output, words


# -- pytest-xdist ------------------------------------------------------------------


def test_xdist_workers_each_run_their_own_servers(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from pathlib import Path

        RESULTS = Path(__file__).parent / "ports"


        @pytest.mark.parametrize("n", range(6))
        @pytest.mark.pop3({"alice": {"password": "pw", "messages": ["Subject: x\\n\\nx\\n"]}})
        def test_parallel(pop3_server, worker_id, n):
            client = pop3(pop3_server)
            assert client.stat()[0] == 1
            client.dele(1)
            client.quit()
            pop3_server.wait_idle()
            assert pop3_server.store["alice"].messages == ()
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{worker_id}-{n}").write_text(str(pop3_server.port))
        """,
        "-n",
        "2",
        *LEAN,
        subprocess=True,
    )
    result.assert_outcomes(passed=6)
    names = [path.name for path in (pytester.path / "ports").iterdir()]
    assert len(names) == 6
    assert {name.split("-")[0] for name in names} == {"gw0", "gw1"}


# -- the transcript in a failure report ----------------------------------------------


def test_a_failing_test_reports_the_transcript_with_the_password_masked(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        PASSWORD = "-".join(["correct", "horse", "battery"])
        BOXES = {"alice": {"password": PASSWORD, "messages": ["Subject: x\\n\\nx\\n"]}}


        @pytest.mark.pop3(BOXES)
        def test_fails(pop3_server):
            client = pop3(pop3_server, password=PASSWORD)
            count, _ = client.stat()
            client.quit()
            assert count == 0, "the mailbox should be empty"


        @pytest.mark.pop3(BOXES)
        def test_passes(pop3_server):
            pop3(pop3_server, password=PASSWORD).quit()
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails _*",
            "*- fakepop transcript (call) -*",
            "--- session 1 from 127.0.0.1:* (alice), ended by QUIT after * s",
            "S: +OK fakepop POP3 server ready. <*@localhost>",
            "C: USER alice",
            "S: +OK*",
            "C: PASS ****",
            "S: +OK*",
            "   (state: TRANSACTION)",
            "C: STAT",
            "S: +OK 1 *",
            "C: QUIT",
        ]
    )
    output = result.stdout.str()
    assert "C: PASS ****" in output
    assert "correct-horse-battery" not in output
    assert output.count("fakepop transcript") == 1  # not for the test that passed


# -- report settings ---------------------------------------------------------------------

# Two tests that each RETR a message: the first fails, the second passes.
RETR_THEN = """
BOXES = {"alice": {"password": "pw", "messages": ["Subject: x\\n\\nx\\n"]}}


def retr_and_quit(server):
    client = pop3(server)
    client.retr(1)
    client.quit()
    server.wait_idle()


@pytest.mark.pop3(BOXES)
def test_fails(pop3_server):
    retr_and_quit(pop3_server)
    assert False, "the code under test went wrong"


@pytest.mark.pop3(BOXES)
def test_passes(pop3_server):
    retr_and_quit(pop3_server)
"""


@pytest.mark.parametrize(
    ("ini", "args", "failing", "passing"),
    [
        ("", [], 1, 0),
        ("fakepop_transcript = always\n", [], 1, 1),
        ("fakepop_transcript = always\n", ["--fakepop-transcript=never"], 0, 0),
        ("fakepop_transcript = never\n", ["--fakepop-transcript", "on-failure"], 1, 0),
    ],
    ids=["default", "ini-always", "command-line-over-ini", "back-to-the-default"],
)
def test_when_the_report_shows_the_transcript(
    pytester: pytest.Pytester, ini: str, args: list[str], failing: int, passing: int
) -> None:
    """``fakepop_transcript`` (ini) or ``--fakepop-transcript``, the command line
    winning: on-failure, always (passing tests' show with -rP) or never."""
    result = run(pytester, RETR_THEN, "-rP", *args, *LEAN, ini=ini)
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    # A failing test's at the phase that failed; a passing test's once, at teardown,
    # when its sessions have ended.
    assert output.count("- fakepop transcript (call) -") == failing
    assert output.count("- fakepop transcript (teardown) -") == passing
    assert output.count("C: RETR 1") == failing + passing


def test_the_report_leaves_out_payload_sizes_and_shows_timestamps(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        RETR_THEN,
        "--fakepop-transcript-payloads=off",
        *LEAN,
        ini="fakepop_transcript_payloads = on\nfakepop_transcript_timestamps = on\n",
    )
    result.assert_outcomes(passed=1, failed=1)
    at = "[[]  ?.???[]]"  # [  0.001]: seconds since the session started
    result.stdout.fnmatch_lines(
        [
            "*- fakepop transcript (call) -*",
            "--- session 1 from 127.0.0.1:* (alice), ended by QUIT after * s",
            f"{at} S: +OK fakepop POP3 server ready. <*@localhost>",
            f"{at} C: USER alice",
            f"{at} C: RETR 1",
            f"{at} S: +OK 17 octets",
            f"{at} C: QUIT",
        ]
    )
    assert "more lines" not in result.stdout.str()


def test_a_long_transcript_keeps_its_end_in_the_report(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        RETR_THEN,
        "--fakepop-transcript-max-chars=150",
        *LEAN,
        ini="fakepop_transcript_max_chars = 100000\n",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- fakepop transcript (call) -*",
            "[[]... * characters cut ...[]]",
            "C: QUIT",
            "S: +OK Logging out*",
            "   (state: CLOSED)",
            "   (ended: QUIT)",
        ]
    )
    assert "C: USER alice" not in result.stdout.str()


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        (
            "",
            ["--fakepop-transcript=sometimes"],
            "--fakepop-transcript: 'sometimes' is not one of on-failure, always, never",
        ),
        (
            "fakepop_transcript_timestamps = maybe\n",
            [],
            "fakepop_transcript_timestamps (ini): 'maybe' is neither on nor off",
        ),
        (
            "fakepop_transcript_max_chars = lots\n",
            [],
            "fakepop_transcript_max_chars (ini): 'lots' is not a number of characters "
            "(0 for no limit)",
        ),
        (
            "",
            ["--fakepop-transcript-max-chars=-5"],
            "--fakepop-transcript-max-chars: '-5' is not a number of characters "
            "(0 for no limit)",
        ),
    ],
)
def test_a_bad_report_setting_is_a_usage_error(
    pytester: pytest.Pytester, ini: str, args: list[str], message: str
) -> None:
    result = run(pytester, RETR_THEN, *args, *LEAN, ini=ini)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


# -- a transcript the failure's message shows already ----------------------------------------


def test_a_transcript_the_exception_shows_gets_no_section_of_its_own(
    pytester: pytest.Pytester,
) -> None:
    """ExpectationError and WaitTimeout show their transcript in their message
    (fakepop.errors): the report shows it once, and the other servers' as usual."""
    result = run(
        pytester,
        """
        import sys

        from fakepop import ExpectationError, Transcript, WaitTimeout

        if sys.version_info < (3, 11):
            from exceptiongroup import ExceptionGroup


        def two_servers(make):
            first, second = make({"alice": "pw"}), make({"bob": "pw"})
            pop3(first).quit()
            pop3(second, "bob").quit()
            first.wait_idle()
            second.wait_idle()
            return first, second


        def test_expectation(pop3_server_factory):
            first, second = two_servers(pop3_server_factory)
            transcript = second.transcript
            raise ExpectationError(f"bob said otherwise:\\n{transcript.render()}", transcript)


        def test_wait_in_a_group(pop3_server_factory):
            first, second = two_servers(pop3_server_factory)
            transcript = first.transcript
            timeout = WaitTimeout(f"waited in vain:\\n{transcript.render()}", transcript)
            raise ExceptionGroup("from a nursery", [timeout])


        def test_not_one_of_the_test_s_transcripts(pop3_server_factory):
            two_servers(pop3_server_factory)
            raise ExpectationError("another transcript", Transcript())
        """,
        *LEAN,
    )
    result.assert_outcomes(failed=3)
    sections = {
        name: result.stdout.str().split(f"_ {name} _", 1)[1].split("\n___", 1)[0]
        for name in (
            "test_expectation",
            "test_wait_in_a_group",
            "test_not_one_of_the_test_s_transcripts",
        )
    }
    shown_by_the_message = {"test_expectation": "bob", "test_wait_in_a_group": "alice"}
    for test, user in shown_by_the_message.items():
        other = "alice" if user == "bob" else "bob"
        assert sections[test].count(f"C: USER {user}") == 1  # in the message only
        assert sections[test].count(f"C: USER {other}") == 1  # in its section
        assert sections[test].count("- fakepop transcript ") == 1
    last = sections["test_not_one_of_the_test_s_transcripts"]
    assert last.count("- fakepop transcript ") == 2


# -- an error inside the server ------------------------------------------------------


@pytest.mark.parametrize("fixture", ["pop3_server", "pop3_shared_server"])
def test_an_error_inside_the_server_fails_the_test_at_teardown(
    pytester: pytest.Pytester, fixture: str
) -> None:
    result = run(
        pytester,
        f"""
        from fakepop._protocol import Pop3Protocol


        @pytest.fixture
        def server({fixture}):
            return {fixture}


        @pytest.mark.pop3({{"alice": "pw"}})
        def test_body_passes(server, monkeypatch):
            handle = Pop3Protocol.handle

            def broken(self, command):
                if command.keyword == "STAT":
                    raise RuntimeError("bug in STAT")
                return handle(self, command)

            monkeypatch.setattr(Pop3Protocol, "handle", broken)
            client = pop3(server)
            with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
                client.stat()
            client.close()


        @pytest.mark.pop3({{"alice": "pw"}})
        def test_next_one_is_not_blamed(server):
            client = pop3(server)
            client.stat()
            client.quit()
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_body_passes*",
            "fakepop.ServerError: fakepop server raised 1 error(s): RuntimeError: bug in STAT",
            "*- fakepop transcript (teardown) -*",
            "*ended by error inside the server*",
            "C: STAT",
            "   (error inside the server: RuntimeError: bug in STAT)",
        ]
    )


def test_a_server_error_report_shows_the_error_and_the_transcript_not_the_plugin(
    pytester: pytest.Pytester,
) -> None:
    """A session that failed inside the server fails the test with a report of what
    was raised where, and the transcript; not the fixture's code, nor the mailboxes
    (whose repr holds the passwords) that pytest would show as its arguments."""
    result = run(
        pytester,
        """
        import trio

        from fakepop._protocol import Pop3Protocol

        BOXES = {"alice": {"password": "pw-Zebra-42", "messages": ["Subject: s\\\\n\\\\ns\\\\n"]}}


        @pytest.fixture(autouse=True)
        def broken_stat(monkeypatch):
            handle = Pop3Protocol.handle

            def broken(self, command):
                if command.keyword == "STAT":
                    raise RuntimeError("bug in STAT")
                return handle(self, command)

            monkeypatch.setattr(Pop3Protocol, "handle", broken)


        def stat_fails(server):
            client = pop3(server, password=BOXES["alice"]["password"])
            with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
                client.stat()
            client.close()


        @pytest.mark.pop3(BOXES)
        def test_thread(pop3_server):
            stat_fails(pop3_server)
            pop3_server.wait_idle()


        @pytest.mark.pop3(BOXES)
        def test_shared(pop3_shared_server):
            stat_fails(pop3_shared_server)
            pop3_shared_server.wait_idle()


        @pytest.mark.pop3(BOXES)
        async def test_trio(trio_pop3_server):
            await trio.to_thread.run_sync(stat_fails, trio_pop3_server)
            await trio_pop3_server.wait_idle()
        """,
        "-vv",  # the summary lines whole, however wide the terminal
        trio_mode=True,
    )
    result.assert_outcomes(passed=2, errors=2, failed=1)
    output = result.stdout.str()
    for header, phase in [
        ("ERROR at teardown of test_thread", "teardown"),
        ("ERROR at teardown of test_shared", "teardown"),
        ("_ test_trio _", "call"),  # pytest-trio tears fixtures down in the test's run
    ]:
        report = output.split(header, 1)[1].split("\n__", 1)[0]
        assert report.lstrip(" _\n").startswith(
            "fakepop.ServerError: fakepop server raised 1 error(s): RuntimeError: bug in STAT\n"
        ), report
        pytester_lines = pytest.LineMatcher(report.splitlines())
        pytester_lines.fnmatch_lines(
            [
                "error 1 of 1, raised inside the server:",
                "Traceback (most recent call last):",
                '*File "*test_a_server_error_report_shows_the_error*.py", line *, in broken',
                '*raise RuntimeError("bug in STAT")',
                "RuntimeError: bug in STAT",
                f"*- fakepop transcript ({phase}) -*",
                "--- session 1 from *(alice), ended by error inside the server*",
                "C: STAT",
                "   (error inside the server: RuntimeError: bug in STAT)",
            ]
        )
        for internal in ("pytest_plugin", "factory.close()", "Pop3ServerFactory", "Zebra"):
            assert internal not in report, (internal, report)
    result.stdout.fnmatch_lines(  # the summary line: the first of the report
        [
            "FAILED *::test_trio - fakepop.ServerError: fakepop server raised 1 error(s): "
            "RuntimeError: bug in STAT",
            "ERROR *::test_thread - fakepop.ServerError: fakepop server raised 1 error(s): "
            "RuntimeError: bug in STAT",
        ]
    )


def test_a_server_error_keeps_its_one_line_summary_across_xdist_workers(
    pytester: pytest.Pytester,
) -> None:
    """pytest-xdist sends a report's text between processes: the summary line (whole
    with -vv, as on CI) is still the error's first line, not the whole report."""
    result = run(
        pytester,
        """
        from fakepop._protocol import Pop3Protocol


        @pytest.mark.pop3({"alice": "pw"})
        def test_body_passes(pop3_server, monkeypatch):
            def broken(self, command):
                raise RuntimeError("bug in every command")

            client = pop3(pop3_server)
            monkeypatch.setattr(Pop3Protocol, "handle", broken)
            with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
                client.stat()
            client.close()
            pop3_server.wait_idle()
        """,
        "-n",
        "1",
        "-vv",
        *LEAN,
        subprocess=True,
    )
    result.assert_outcomes(passed=1, errors=1)
    summary = result.stdout.str().split("short test summary info", 1)[1].splitlines()[1:]
    assert summary[0].endswith(
        "::test_body_passes - fakepop.ServerError: fakepop server raised 1 error(s): "
        "RuntimeError: bug in every command"
    )
    assert summary[1].startswith("=====")  # the closing line: nothing more
    result.stdout.fnmatch_lines(["error 1 of 1, raised inside the server:"])


# -- pop3_shared_server ------------------------------------------------------------


def test_the_shared_server_is_reset_for_every_test(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        seen = {}


        @pytest.mark.pop3({"alice": {"password": "pw", "messages": ["Subject: 1\\n\\n1\\n"]}})
        def test_one(pop3_shared_server):
            seen["port"] = pop3_shared_server.port
            client = pop3(pop3_shared_server)
            assert client.stat()[0] == 1
            client.dele(1)
            seen["client"] = client  # left logged in, on purpose


        @pytest.mark.pop3({"alice": {"password": "pw2", "messages": ["a", "b"]}, "bob": "pw"})
        def test_two(pop3_shared_server):
            server = pop3_shared_server
            assert server.port == seen["port"]
            assert len(server.transcript) == 0
            assert sorted(server.store.users) == ["alice", "bob"]
            # The session test_one left open was ended before this test began.
            with pytest.raises((poplib.error_proto, OSError)):
                seen["client"].stat()
            seen["client"].close()
            # ... which released alice's lock; she sees this test's mailbox.
            client = pop3(server, password="pw2")
            assert client.stat()[0] == 2
            client.quit()


        def test_three_without_marker(pop3_shared_server):
            assert pop3_shared_server.port == seen["port"]
            assert pop3_shared_server.store.users == []
            assert len(pop3_shared_server.transcript) == 0


        @pytest.mark.pop3({"alice": "pw"}, autologout=30, greeting="hi")
        def test_options_are_refused(pop3_shared_server):
            pass
        """,
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_options_are_refused*",
            "E * pop3_shared_server runs with the session's pop3_shared_config, but this "
            "test asks for other options*",
        ]
    )


def test_sessions_a_test_leaves_open_on_the_shared_server_end_with_it(
    pytester: pytest.Pytester,
) -> None:
    """A client the first test forgets is disconnected when that test ends, so the
    next test starts with no session open and nothing of the first test's running."""
    result = run(
        pytester,
        """
        FORGOTTEN = []


        @pytest.mark.pop3({"alice": "pw"})
        def test_one(pop3_shared_server):
            FORGOTTEN.append(pop3(pop3_shared_server))
            assert pop3_shared_server.server.active_sessions == 1


        def test_two(pop3_shared_server):
            assert pop3_shared_server.server.active_sessions == 0
            client = FORGOTTEN.pop()
            with pytest.raises((poplib.error_proto, OSError)):
                client.stat()
            client.close()
        """,
    )
    result.assert_outcomes(passed=2)


# -- overriding the configuration fixtures --------------------------------------------


def test_a_conftest_can_override_mailboxes_config_and_address(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import socket

        import pytest

        from fakepop import ServerConfig


        @pytest.fixture(scope="session")
        def pop3_listen_address():
            with socket.socket() as probe:  # a port that was free a moment ago
                probe.bind(("127.0.0.1", 0))
                return ("127.0.0.1", probe.getsockname()[1])


        @pytest.fixture
        def pop3_mailboxes():
            return {"bob": {"password": "builder", "messages": ["Subject: b\\n\\nb\\n"]}}


        CONFTEST_CONFIG = ServerConfig(greeting="Conftest POP3 here.", apop=False)


        @pytest.fixture
        def pop3_config():
            return CONFTEST_CONFIG


        @pytest.fixture(scope="session")
        def pop3_shared_config():
            return CONFTEST_CONFIG
        """
    )
    result = run(
        pytester,
        """
        def test_pop3_server(pop3_server, pop3_listen_address):
            assert pop3_server.address == pop3_listen_address
            client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=TIMEOUT)
            assert client.getwelcome() == b"+OK Conftest POP3 here."
            client.user("bob")
            client.pass_("builder")
            assert client.stat()[0] == 1
            client.quit()
            assert "alice" not in pop3_server.store


        def test_pop3_shared_server(pop3_shared_server, pop3_listen_address):
            assert pop3_shared_server.address == pop3_listen_address
            assert pop3_shared_server.store.users == ["bob"]


        def test_pop3_shared_server_options(pop3_shared_server):
            server = pop3_shared_server
            client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
            try:
                assert client.getwelcome() == b"+OK Conftest POP3 here."
            finally:
                client.close()
        """,
    )
    result.assert_outcomes(passed=3)


def test_the_shared_server_refuses_a_pop3_config_it_does_not_run_with(
    pytester: pytest.Pytester,
) -> None:
    """Overriding pop3_config alone cannot change the session-wide server's options;
    the test is refused rather than run silently with other options."""
    pytester.makeconftest(
        """
        import pytest

        from fakepop import ServerConfig


        @pytest.fixture
        def pop3_config():
            return ServerConfig(greeting="Not for the shared server.")
        """
    )
    result = run(
        pytester,
        """
        def test_shared(pop3_shared_server):
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["E * pop3_shared_server runs with the session's*"])


# -- markers at several levels --------------------------------------------------------


def test_markers_at_every_level_merge_key_by_key_the_closest_winning(
    pytester: pytest.Pytester,
) -> None:
    """A module's mailboxes and a test's options make one server (docs/howto/fixtures.md, "Markers
    at several levels"): each key comes from the closest marker that sets it."""
    result = run(
        pytester,
        """
        from fakepop import ServerConfig, profiles

        MAILBOXES = {"alice": {"password": "pw", "messages": ["Subject: m\\n\\nm\\n"]}}

        pytestmark = pytest.mark.pop3(MAILBOXES, greeting="Module.", expire=7)


        @pytest.mark.pop3(autologout=5)
        def test_function_options_keep_the_module_mailboxes(pop3_server, pop3_config):
            assert pop3_config == ServerConfig(greeting="Module.", expire=7, autologout=5)
            client = pop3(pop3_server)
            assert client.stat()[0] == 1
            client.quit()


        @pytest.mark.pop3(greeting="Class.", login_delay=60)
        class TestAClassLevel:
            @pytest.mark.pop3({"bob": "pw"}, greeting="Function.")
            def test_the_closest_wins_per_key(self, pop3_mailboxes, pop3_config):
                assert pop3_mailboxes == {"bob": "pw"}  # replaced whole, not merged
                assert pop3_config == ServerConfig(
                    greeting="Function.", expire=7, login_delay=60
                )

            def test_the_class_over_the_module(self, pop3_mailboxes, pop3_config):
                assert pop3_mailboxes == MAILBOXES
                assert pop3_config == ServerConfig(greeting="Class.", expire=7, login_delay=60)


        @pytest.mark.pop3(mailboxes={"carol": "pw"})
        @pytest.mark.pop3(tls=True, profile="dovecot")
        def test_stacked_and_named_keys(pop3_mailboxes, pop3_config, pop3_server):
            assert pop3_mailboxes == {"carol": "pw"}
            # The profile's defaults, then every option of every level on top of them.
            assert pop3_config == profiles.dovecot(greeting="Module.", expire=7)
            assert pop3_config.apop is False
            assert pop3_server.pop3s_port > 0  # tls=True from the other marker
        """,
        *LEAN,
    )
    result.assert_outcomes(passed=4)


# -- marker mistakes ---------------------------------------------------------------


def test_marker_mistakes_are_usage_errors_that_name_the_mistake(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.pop3({"alice": "pw"}, autologot=5)
        def test_typo(pop3_server):
            pass


        @pytest.mark.pop3({"alice": "pw"}, {"bob": "pw"})
        def test_two_positional(pop3_server):
            pass
        """,
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_typo*",
            "E * @pytest.mark.pop3: unknown option(s) autologot; the options are mailboxes, "
            "tls, profile and the fields of fakepop.ServerConfig: apop, autologout, capa, *",
            "*ERROR at setup of test_two_positional*",
            "E * @pytest.mark.pop3 takes the mailboxes as its only positional argument",
        ]
    )


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    result = pytester.runpytest("--markers", *LEAN)
    result.stdout.fnmatch_lines(["@pytest.mark.pop3(mailboxes=None, **options): *"])


# -- the transcript query API --------------------------------------------------------


def test_transcript_queries_and_assert_commands(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        BOXES = {
            "alice": {"password": "pw", "messages": ["Subject: a\\n\\na\\n"]},
            "bob": "pw",
        }


        def both_check_mail(server):
            for user in ("alice", "bob"):
                client = pop3(server, user)
                client.stat()
                client.quit()
            server.wait_idle()


        @pytest.mark.pop3(BOXES)
        def test_right(pop3_server):
            both_check_mail(pop3_server)
            transcript = pop3_server.transcript
            transcript.assert_commands(["USER alice", "PASS ****", "STAT", "QUIT"], user="alice")
            transcript.assert_commands(["USER", "PASS", "STAT", "QUIT"] * 2, keywords_only=True)
            assert [s.user for s in transcript.sessions_of("bob")] == ["bob"]
            assert transcript.replies_to("STAT", user="bob") == ["+OK 0 0"]
            assert transcript.commands(user="bob", show_secrets=True)[1] == "PASS pw"
            assert transcript.removed() == []
            assert '"PASS ****"' in transcript.to_json()


        @pytest.mark.pop3(BOXES)
        def test_wrong(pop3_server):
            both_check_mail(pop3_server)
            pop3_server.transcript.assert_commands(
                ["USER alice", "PASS ****", "NOOP", "QUIT"], user="alice"
            )
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_wrong _*",
            "E * POP3 commands of alice differ from what was expected:",
            "E *--- expected",
            "E *+++ actual",
            "E *@@ -1,4 +1,4 @@",
            "E *  USER alice",
            "E *  PASS ****",
            "E *-NOOP",
            "E *+STAT",
            "E *  QUIT",
        ]
    )


# -- pop3_server_factory: several servers in one test -----------------------------------


def test_a_client_fails_over_to_the_second_server_of_the_factory(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        from fakepop import ServerConfig, faults

        MAIL = {"alice": {"password": "pw", "messages": {"m1": "Subject: 1\\n\\n1\\n"}}}


        class POP3(poplib.POP3):
            \"\"\"poplib.POP3 that closes its socket when the greeting fails.\"\"\"

            def __init__(self, *args, **kwargs):
                try:
                    super().__init__(*args, **kwargs)
                except BaseException:
                    if getattr(self, "sock", None) is not None:
                        self.close()
                    raise


        def fetch_from_first_that_answers(servers):
            \"\"\"The code under test: take alice's mail from the first server that
            greets, trying them in order.\"\"\"
            for host, port in servers:
                try:
                    client = POP3(host, port, timeout=TIMEOUT)
                except (poplib.error_proto, OSError):
                    continue
                client.user("alice")
                client.pass_("pw")
                messages = [b"\\n".join(client.retr(1)[1])]
                client.dele(1)
                client.quit()
                return port, client.welcome, messages
            raise ConnectionError("no server answered")


        @pytest.mark.pop3(MAIL)
        def test_failover(pop3_server_factory):
            make = pop3_server_factory
            primary = make()
            backup = make(MAIL, config=ServerConfig(greeting="Backup here."), tls=False)
            assert primary.port != backup.port
            assert primary.is_running() and backup.is_running()
            primary.faults.add(faults.refuse_connection())

            port, welcome, messages = fetch_from_first_that_answers(
                [primary.address, backup.address]
            )

            assert port == backup.port
            assert welcome.startswith(b"+OK Backup here. <")
            assert messages == [b"Subject: 1\\n\\n1"]
            primary.wait_idle()
            backup.wait_idle()
            (refused,) = primary.transcript.sessions
            assert refused.user is None
            assert primary.transcript.commands() == []
            assert primary.store["alice"].uids == ["m1"]  # untouched
            assert backup.store["alice"].messages == ()
            assert backup.transcript.removed(user="alice") == ["m1"]
            assert pop3_server_factory.servers == [primary, backup]


        def test_pop3_server_is_the_factory_s_first_server(pop3_server, pop3_server_factory):
            other = pop3_server_factory({"bob": "pw"})
            assert pop3_server_factory.servers == [pop3_server, other]
            assert pop3_server.store.users == []
            assert other.store.users == ["bob"]
        """,
    )
    result.assert_outcomes(passed=2)


def test_each_factory_server_is_stopped_and_reported_when_the_test_fails(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        MADE = []


        @pytest.mark.pop3({"alice": "pw"})
        def test_fails(pop3_server_factory):
            MADE.extend([pop3_server_factory(), pop3_server_factory({"bob": "pw"})])
            pop3(MADE[0]).quit()
            pop3(MADE[1], "bob").quit()
            for server in MADE:
                server.wait_idle()
            assert False, "the code under test went wrong"


        def test_servers_of_the_last_test_are_stopped():
            assert len(MADE) == 2
            assert not any(server.is_running() for server in MADE)
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails _*",
            "*- fakepop transcript 1 (call) -*",
            "C: USER alice",
            "*- fakepop transcript 2 (call) -*",
            "C: USER bob",
        ]
    )
    assert output.count("fakepop transcript") == 2


def test_an_error_inside_one_factory_server_fails_the_test_at_teardown(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        from fakepop._protocol import Pop3Protocol

        MADE = []


        @pytest.mark.pop3({"alice": "pw"})
        def test_body_passes(pop3_server_factory, monkeypatch):
            healthy, broken_one = pop3_server_factory(), pop3_server_factory()
            MADE.extend([healthy, broken_one])
            client = pop3(healthy)
            client.stat()
            client.quit()

            handle = Pop3Protocol.handle

            def broken(self, command):
                if command.keyword == "STAT":
                    raise RuntimeError("bug in STAT")
                return handle(self, command)

            monkeypatch.setattr(Pop3Protocol, "handle", broken)
            client = pop3(broken_one)
            with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
                client.stat()
            client.close()


        def test_both_were_stopped_and_the_next_test_is_not_blamed(pop3_server):
            assert not any(server.is_running() for server in MADE)
            assert pop3_server.is_running()
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_body_passes*",
            "fakepop.ServerError: fakepop server raised 1 error(s): RuntimeError: bug in STAT",
            "*- fakepop transcript 1 (teardown) -*",
            "*ended by QUIT*",
            "*- fakepop transcript 2 (teardown) -*",
            "*ended by error inside the server*",
            "   (error inside the server: RuntimeError: bug in STAT)",
        ]
    )


def test_errors_inside_several_factory_servers_are_all_reported(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        from fakepop._protocol import Pop3Protocol


        @pytest.mark.pop3({"alice": "pw"})
        def test_body_passes(pop3_server_factory, monkeypatch):
            handle = Pop3Protocol.handle

            def broken(self, command):
                if command.keyword in ("STAT", "NOOP"):
                    raise RuntimeError(f"bug in {command.keyword}")
                return handle(self, command)

            monkeypatch.setattr(Pop3Protocol, "handle", broken)
            for server, command in zip(
                [pop3_server_factory(), pop3_server_factory()], ["stat", "noop"]
            ):
                client = pop3(server)
                with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
                    getattr(client, command)()
                client.close()
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_body_passes*",
            "fakepop.ServerError: fakepop server raised 2 error(s): "
            "RuntimeError: bug in STAT; RuntimeError: bug in NOOP",
        ]
    )


def test_a_factory_server_can_offer_tls_in_a_test_not_marked_for_it(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.pop3({"alice": "pw"})
        def test_tls_and_plain(pop3_server_factory, pop3_tls):
            plain = pop3_server_factory()
            secure = pop3_server_factory(tls=True)
            with pytest.raises(RuntimeError):
                plain.pop3s_port
            client = poplib.POP3_SSL(
                secure.host, secure.pop3s_port, context=pop3_tls.client_context(),
                timeout=TIMEOUT,
            )
            client.user("alice")
            client.pass_("pw")
            assert client.stat() == (0, 0)
            client.quit()
        """,
        *LEAN,
    )
    result.assert_outcomes(passed=1)
