"""The sans-IO protocol engine, fed whole, byte by byte and in random pieces.

Tests citing "checklist #N" implement test vector N of the POP3 conformance checklist.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakepop import MailStore, Pop3Protocol, ServerConfig, State
from tests.sansio import (
    APOP_TIMESTAMP,
    LOGGED_IN,
    LOGIN,
    M1,
    SIZES,
    TOTAL,
    apop_digest,
    checklist_store,
    converse,
    feed,
    lines,
    new_session,
)

# -- greeting -------------------------------------------------------------------------


def test_greeting_is_one_positive_line_with_a_timestamp() -> None:
    """checklist #1: one +OK line, upper case, CRLF, at most 512 octets."""
    greeting = bytes(new_session().greeting())
    assert greeting.startswith(b"+OK ")
    assert greeting.endswith(b"\r\n")
    assert greeting.count(b"\r\n") == 1
    assert len(greeting) <= 512
    assert APOP_TIMESTAMP.encode() in greeting


def test_every_greeting_has_its_own_timestamp() -> None:
    """checklist #2: one <...@...> per greeting, different every time, no other '<'."""
    store = checklist_store()
    greetings = [bytes(Pop3Protocol(store).greeting()) for _ in range(50)]
    stamps = []
    for greeting in greetings:
        assert greeting.count(b"<") == 1
        match = re.search(rb"<[^<>@]+@localhost>", greeting)
        assert match is not None, greeting
        stamps.append(match.group())
    assert len(set(stamps)) == len(stamps)


def test_without_apop_the_greeting_has_no_timestamp() -> None:
    greeting = bytes(new_session(config=ServerConfig(apop=False)).greeting())
    assert b"<" not in greeting
    assert greeting == b"+OK fakepop POP3 server ready.\r\n"


# -- command syntax -------------------------------------------------------------------


def test_keywords_are_case_insensitive() -> None:
    """checklist #4: 'capa' is CAPA; 'stat' after login is STAT."""
    assert converse(b"capa\r\n") == converse(b"CAPA\r\n")
    out = lines(converse(b"user alice\r\npass secret\r\nsTaT\r\n"))
    assert out[2] == f"+OK 3 {TOTAL}".encode()


def test_bad_commands_get_err_and_the_session_goes_on() -> None:
    """checklist #5: XYZZY, USER without name, APOP with one argument."""
    out = lines(converse(b"XYZZY\r\nUSER\r\nAPOP bob\r\n" + LOGIN))
    assert out[0] == b"-ERR Unknown command: XYZZY"
    assert out[1].startswith(b"-ERR USER needs")
    assert out[2].startswith(b"-ERR APOP needs")
    assert out[3:] == LOGGED_IN


@pytest.mark.parametrize(
    "command", [b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"RSET", b"NOOP", b"TOP 1 0", b"UIDL"]
)
def test_transaction_commands_before_login_are_refused(command: bytes) -> None:
    """checklist #6: each gets -ERR in AUTHORIZATION and changes nothing."""
    out = lines(converse(command + b"\r\n" + LOGIN + b"STAT\r\n"))
    keyword = command.split()[0]
    assert out[0] == b"-ERR " + keyword + b" is not allowed before login"
    assert out[1:3] == LOGGED_IN
    assert out[3] == f"+OK 3 {TOTAL}".encode()


def test_empty_line_gets_err() -> None:
    assert lines(converse(b"\r\n")) == [b"-ERR Empty command"]


@pytest.mark.parametrize("command", [b"STAT x", b"NOOP x", b"RSET 1", b"QUIT now", b"CAPA x"])
def test_commands_without_arguments_refuse_extra_ones(command: bytes) -> None:
    out = lines(converse(LOGIN + command + b"\r\nSTAT\r\n"))
    assert out[2] == b"-ERR " + command.split()[0] + b" takes no arguments"
    assert out[3] == f"+OK 3 {TOTAL}".encode()  # still logged in: QUIT x did not quit


def test_a_255_octet_command_is_accepted() -> None:
    """checklist #7: 255 octets including CRLF is a normal command, not a length error."""
    name = "u" * (255 - len("USER \r\n"))
    line = f"USER {name}\r\n".encode()
    assert len(line) == 255
    assert lines(converse(line)) == [f"+OK Send PASS for {name}".encode()]


def test_a_256_octet_command_is_too_long() -> None:
    line = b"USER " + b"u" * (256 - len("USER \r\n")) + b"\r\n"
    assert len(line) == 256
    assert lines(converse(line)) == [b"-ERR Line too long (at most 255 octets including CRLF)"]


def test_an_over_long_line_is_answered_once_and_its_tail_never_runs() -> None:
    """checklist #8: a 1000-octet line gets one -ERR; the QUIT at its end is not run."""
    line = b"NOOP " + b"x" * 990 + b"QUIT\r\n"
    out = lines(converse(LOGIN + line + b"STAT\r\n"))
    assert out[2].startswith(b"-ERR Line too long")
    assert out[3] == f"+OK 3 {TOTAL}".encode()
    assert len(out) == 4


def test_a_line_that_never_ends_keeps_the_buffer_bounded() -> None:
    session = new_session()
    answers = []
    for _ in range(1000):
        session.receive_data(b"y" * 1000)
        while (command := session.next_command()) is not None:
            answers.append(bytes(session.handle(command)))
        assert session._lines.pending < 255
    assert len(answers) == 1
    assert answers[0].startswith(b"-ERR Line too long")
    assert feed(session, [b"\r\nCAPA\r\n"]).startswith(b"+OK Capability list follows\r\n")


def test_bare_lf_line_endings_are_accepted() -> None:
    out = lines(converse(b"USER alice\nPASS secret\nSTAT\n"))
    assert out[:2] == LOGGED_IN
    assert out[2] == f"+OK 3 {TOTAL}".encode()


# -- USER / PASS ----------------------------------------------------------------------


def test_user_and_pass_log_in() -> None:
    """checklist #9 and #13: USER alice gives +OK, PASS locks and enters TRANSACTION."""
    session = new_session()
    out = lines(feed(session, [LOGIN + b"STAT\r\n"]))
    assert out == [*LOGGED_IN, f"+OK 3 {TOTAL}".encode()]
    assert session.state is State.TRANSACTION
    assert session.user == "alice"
    assert session.store["alice"].locked


def test_unknown_user_is_only_refused_at_pass() -> None:
    """checklist #10: USER does not reveal which accounts exist; PASS then fails."""
    out = lines(converse(b"USER nobody\r\nPASS x\r\n"))
    assert out == [b"+OK Send PASS for nobody", b"-ERR [AUTH] Authentication failed"]


def test_pass_without_user_is_refused() -> None:
    """checklist #11"""
    assert lines(converse(b"PASS secret\r\n")) == [
        b"-ERR PASS must come right after a successful USER"
    ]


def test_after_a_wrong_password_pass_needs_a_new_user() -> None:
    """checklist #12: -ERR [AUTH], then a second PASS alone is refused."""
    session = new_session()
    out = lines(feed(session, [b"USER alice\r\nPASS wrong\r\nPASS secret\r\n"]))
    assert out[1] == b"-ERR [AUTH] Authentication failed"
    assert out[2] == b"-ERR PASS must come right after a successful USER"
    assert session.state is State.AUTHORIZATION
    assert not session.store["alice"].locked


def test_password_is_the_rest_of_the_line() -> None:
    """checklist #14: spaces belong to the password."""
    out = lines(converse(b"USER spacey\r\nPASS my secret\r\n"))
    assert out[1].startswith(b"+OK spacey's maildrop is locked")
    out = lines(converse(b"USER spacey\r\nPASS my\r\n"))
    assert out[1] == b"-ERR [AUTH] Authentication failed"


def test_a_second_user_restarts_the_login() -> None:
    """checklist #15 (implementation's choice): the latest USER is the one PASS is for."""
    out = lines(converse(b"USER alice\r\nUSER bob\r\nPASS tanstaaf\r\n"))
    assert out[2].startswith(b"+OK bob's maildrop is locked")


def test_pass_with_no_password_is_refused() -> None:
    out = lines(converse(b"USER alice\r\nPASS\r\nPASS secret\r\n"))
    assert out[1] == b"-ERR PASS needs the password as its argument"
    assert out[2].startswith(b"+OK alice's")  # still waiting for a password


def test_second_login_to_a_locked_mailbox_is_in_use() -> None:
    """checklist #17: -ERR [IN-USE]; the first session is unaffected."""
    store = checklist_store()
    first, second = new_session(store), new_session(store)
    feed(first, [LOGIN])
    out = lines(feed(second, [LOGIN]))
    assert out[1] == b"-ERR [IN-USE] Mailbox is locked by another session"
    assert second.state is State.AUTHORIZATION
    assert lines(feed(first, [b"STAT\r\n"])) == [f"+OK 3 {TOTAL}".encode()]
    feed(first, [b"QUIT\r\n"])
    assert lines(feed(second, [LOGIN]))[1].startswith(b"+OK alice's maildrop")


def test_login_delay_is_enforced() -> None:
    """checklist #18: within LOGIN-DELAY seconds of the last login, -ERR [LOGIN-DELAY]."""
    store = checklist_store()
    config = ServerConfig(login_delay=60)
    now = [1000.0]

    def session() -> Pop3Protocol:
        return Pop3Protocol(store, config, clock=lambda: now[0])

    assert lines(feed(session(), [LOGIN + b"QUIT\r\n"]))[1].startswith(b"+OK")
    now[0] += 59
    refused = lines(feed(session(), [LOGIN]))[1]
    assert refused.startswith(b"-ERR [LOGIN-DELAY] ")
    assert not store["alice"].locked
    now[0] += 1
    assert lines(feed(session(), [LOGIN]))[1].startswith(b"+OK")


def test_wrong_password_never_reveals_lock_state() -> None:
    store = checklist_store()
    feed(new_session(store), [LOGIN])
    out = lines(feed(new_session(store), [b"USER alice\r\nPASS wrong\r\n"]))
    assert out[1] == b"-ERR [AUTH] Authentication failed"


# -- APOP -----------------------------------------------------------------------------


def test_apop_with_the_right_digest_logs_in() -> None:
    """checklist #19"""
    out = lines(converse(f"APOP bob {apop_digest('tanstaaf')}\r\nSTAT\r\n".encode()))
    assert out == [b"+OK bob's maildrop is locked and ready: 0 messages (0 octets)", b"+OK 0 0"]


def test_apop_digest_may_be_upper_case() -> None:
    out = lines(converse(f"APOP bob {apop_digest('tanstaaf').upper()}\r\n".encode()))
    assert out[0].startswith(b"+OK bob's")


def test_apop_with_a_wrong_digest_is_refused() -> None:
    """checklist #20"""
    out = lines(converse(f"APOP bob {apop_digest('wrong')}\r\nAPOP bob nothex\r\n".encode()))
    assert out == [
        b"-ERR [AUTH] Authentication failed",
        b"-ERR APOP digest must be 32 hexadecimal digits",
    ]


def test_apop_digest_from_an_old_greeting_is_refused() -> None:
    """checklist #21: the digest only fits the timestamp of this connection."""
    old = apop_digest("tanstaaf", "<1.2.3@localhost>")
    assert lines(converse(f"APOP bob {old}\r\n".encode())) == [
        b"-ERR [AUTH] Authentication failed"
    ]


def test_apop_without_timestamp_is_refused() -> None:
    """checklist #22: no timestamp in the greeting, no APOP."""
    command = f"APOP bob {apop_digest('tanstaaf')}\r\n".encode()
    out = lines(converse(command, ServerConfig(apop=False)))
    assert out == [b"-ERR Unknown command: APOP"]


# -- TRANSACTION ----------------------------------------------------------------------


def test_stat_counts_exact_crlf_octets() -> None:
    """checklist #23: messages stored with LF count each line ending as two octets."""
    assert lines(converse(LOGIN + b"STAT\r\n"))[2] == f"+OK 3 {TOTAL}".encode()


def test_list_lists_every_message_with_its_size() -> None:
    """checklist #24"""
    out = lines(converse(LOGIN + b"LIST\r\n"))[2:]
    assert out == [
        f"+OK 3 messages ({TOTAL} octets)".encode(),
        *[f"{n} {size}".encode() for n, size in enumerate(SIZES, 1)],
        b".",
    ]


def test_list_with_a_number_is_one_line() -> None:
    """checklist #25"""
    assert lines(converse(LOGIN + b"LIST 2\r\n"))[2:] == [f"+OK 2 {SIZES[1]}".encode()]


@pytest.mark.parametrize(
    ("argument", "error"),
    [
        (b"4", b"-ERR No such message: 4"),
        (b"0", b"-ERR No such message: 0"),
        (b"-1", b"-ERR Invalid message number: -1"),
        (b"x", b"-ERR Invalid message number: x"),
        (b"+1", b"-ERR Invalid message number: +1"),
        (b"99999999999999999999", b"-ERR No such message: 99999999999999999999"),
        (b"1 2", b"-ERR LIST takes at most one argument: a message number"),
        (b"", b"-ERR Invalid message number: "),
    ],
)
def test_list_refuses_bad_message_numbers(argument: bytes, error: bytes) -> None:
    """checklist #26"""
    assert lines(converse(LOGIN + b"LIST " + argument + b"\r\n"))[2:] == [error]


def test_retr_sends_the_message_dot_stuffed() -> None:
    """checklist #27: '.x' and '.' go out as '..x' and '..'; unstuffed it is s1 octets."""
    out = converse(LOGIN + b"RETR 1\r\n")
    reply = out.split(b"\r\n", 2)[2]
    status, _, payload = reply.partition(b"\r\n")
    assert status == f"+OK {SIZES[0]} octets".encode()
    assert payload.endswith(b"\r\n.\r\n")
    body = payload[: -len(b".\r\n")]
    assert b"\r\n..x\r\n..\r\n" in body
    unstuffed = body.replace(b"\r\n..", b"\r\n.")
    assert unstuffed == M1.replace("\n", "\r\n").encode()
    assert len(unstuffed) == SIZES[0]


def test_retr_needs_an_existing_message() -> None:
    """checklist #28"""
    assert lines(converse(LOGIN + b"RETR\r\nRETR 4\r\n"))[2:] == [
        b"-ERR RETR needs exactly one argument: a message number",
        b"-ERR No such message: 4",
    ]


def test_an_empty_mailbox() -> None:
    """checklist #29: LIST and UIDL are +OK then '.', STAT is +OK 0 0."""
    out = lines(converse(b"USER empty\r\nPASS nothing\r\nLIST\r\nSTAT\r\nUIDL\r\n"))
    assert out[2:] == [
        b"+OK 0 messages (0 octets)",
        b".",
        b"+OK 0 0",
        b"+OK Unique-ID listing follows",
        b".",
    ]


def test_dele_hides_the_message_from_stat_and_list() -> None:
    """checklist #30"""
    out = lines(converse(LOGIN + b"DELE 1\r\nSTAT\r\nLIST\r\n"))[2:]
    rest = SIZES[1] + SIZES[2]
    assert out == [
        b"+OK Message 1 marked for deletion",
        f"+OK 2 {rest}".encode(),
        f"+OK 2 messages ({rest} octets)".encode(),
        f"2 {SIZES[1]}".encode(),
        f"3 {SIZES[2]}".encode(),
        b".",
    ]


@pytest.mark.parametrize(
    "marked", [[1], [2], [12], [1, 2], [11, 12], [1, 6, 12], list(range(1, 13))]
)
def test_list_and_uidl_leave_out_exactly_the_marked_lines(marked: list[int]) -> None:
    # RFC 1939 section 5: a message marked deleted is not listed. Numbers of one and
    # two digits, first and last lines, neighbours, and every line at once.
    messages = {f"u-{n}" * (n % 3 + 1): f"Subject: {n}\n\n{'x' * n}\n" for n in range(1, 13)}
    session = new_session(MailStore({"alice": {"password": "secret", "messages": messages}}))

    def listings(commands: bytes) -> list[bytes]:  # LIST's and UIDL's lines, dots too
        out = lines(feed(session, [commands + b"LIST\r\nUIDL\r\n"]))
        return [line for line in out if not line.startswith(b"+OK")]

    full = listings(LOGIN)
    kept = [line for line in full if line == b"." or int(line.split()[0]) not in marked]
    assert listings(b"".join(b"DELE %d\r\n" % n for n in marked)) == kept


@pytest.mark.parametrize("command", [b"DELE 1", b"RETR 1", b"LIST 1", b"TOP 1 0", b"UIDL 1"])
def test_a_deleted_message_cannot_be_used(command: bytes) -> None:
    """checklist #31"""
    out = lines(converse(LOGIN + b"DELE 1\r\n" + command + b"\r\n"))
    assert out[3] == b"-ERR Message 1 is deleted"


def test_rset_unmarks_everything() -> None:
    """checklist #32"""
    out = lines(converse(LOGIN + b"DELE 1\r\nDELE 3\r\nRSET\r\nSTAT\r\n"))[4:]
    assert out == [f"+OK 3 messages ({TOTAL} octets)".encode(), f"+OK 3 {TOTAL}".encode()]


def test_quit_removes_marked_mail_and_keeps_uids() -> None:
    """checklist #33: after QUIT the next session sees old #2 as #1 with the same UID."""
    store = checklist_store()
    first = new_session(store)
    before = lines(feed(first, [LOGIN + b"UIDL\r\nDELE 1\r\nQUIT\r\n"]))
    assert before[-1] == b"+OK Logging out, 1 message deleted"
    assert first.state is State.CLOSED
    uids = [line.split()[1] for line in before[3:6]]
    after = lines(feed(new_session(store), [LOGIN + b"STAT\r\nUIDL\r\n"]))
    assert after[2] == f"+OK 2 {SIZES[1] + SIZES[2]}".encode()
    assert after[4:6] == [b"1 " + uids[1], b"2 " + uids[2]]
    assert [m.uid.encode() for m in store["alice"].deleted] == [uids[0]]


def test_a_dropped_connection_deletes_nothing() -> None:
    """checklist #34: DELE then a close without QUIT: all mail kept, lock released."""
    store = checklist_store()
    session = new_session(store)
    feed(session, [LOGIN + b"DELE 1\r\nDELE 2\r\n"])
    session.receive_data(b"")
    assert session.next_command() is None
    session.connection_lost()
    assert len(store["alice"]) == 3
    assert not store["alice"].locked
    assert store["alice"].deleted == ()
    assert lines(feed(new_session(store), [LOGIN]))[1].startswith(b"+OK")


def test_top_zero_sends_the_headers_and_the_blank_line() -> None:
    """checklist #36"""
    out = lines(converse(LOGIN + b"TOP 1 0\r\n"))[2:]
    assert out == [
        b"+OK Top of message follows",
        b"From: carol@example.com",
        b"To: alice@example.com",
        b"Subject: one",
        b"",
        b".",
    ]


def test_top_sends_n_body_lines_dot_stuffed() -> None:
    """checklist #37"""
    out = lines(converse(LOGIN + b"TOP 1 2\r\n"))[2:]
    assert out[4:] == [b"", b"first line", b"..x", b"."]


def test_top_beyond_the_body_sends_the_whole_message() -> None:
    """checklist #38"""
    whole = converse(LOGIN + b"RETR 1\r\n").split(b"\r\n", 3)[3]
    top = converse(LOGIN + b"TOP 1 999999\r\n").split(b"\r\n", 3)[3]
    assert top == whole
    huge = converse(LOGIN + b"TOP 1 99999999999999999999999\r\n").split(b"\r\n", 3)[3]
    assert huge == whole


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"TOP 1", b"-ERR TOP needs two arguments: a message number and a line count"),
        (b"TOP 1 -1", b"-ERR Invalid line count: -1"),
        (b"TOP 4 0", b"-ERR No such message: 4"),
        (b"TOP 1 0 0", b"-ERR TOP needs two arguments: a message number and a line count"),
    ],
)
def test_top_refuses_bad_arguments(command: bytes, error: bytes) -> None:
    """checklist #39"""
    assert lines(converse(LOGIN + command + b"\r\n"))[2:] == [error]


def test_uidl_lists_valid_unique_ids() -> None:
    """checklist #40 and #41"""
    out = lines(converse(LOGIN + b"UIDL\r\nUIDL 2\r\n"))[2:]
    assert out[0] == b"+OK Unique-ID listing follows"
    uids = []
    for n, line in enumerate(out[1:4], 1):
        number, uid = line.split(b" ")
        assert int(number) == n
        assert re.fullmatch(rb"[\x21-\x7e]{1,70}", uid)
        uids.append(uid)
    assert len(set(uids)) == 3
    assert out[4] == b"."
    assert out[5] == b"+OK 2 " + uids[1]


def test_uids_survive_sessions_and_are_never_reused() -> None:
    """checklist #42"""
    store = checklist_store()
    dropped = new_session(store)
    first = lines(feed(dropped, [LOGIN + b"UIDL\r\n"]))[3:6]
    dropped.connection_lost()
    second_session = new_session(store)
    second = lines(feed(second_session, [LOGIN + b"UIDL\r\nDELE 3\r\nQUIT\r\n"]))[3:6]
    assert first == second
    new = store.deliver("alice", "Subject: new\r\n\r\nhi\r\n")
    assert new.uid.encode() not in [line.split()[1] for line in first]


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"USER x", b"-ERR USER is not allowed after login"),
        (b"PASS x", b"-ERR PASS is not allowed after login"),
        (b"APOP a b", b"-ERR APOP is not allowed after login"),
        (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", b"-ERR AUTH is not allowed after login"),
        (b"STLS", b"-ERR Unknown command: STLS"),
        (b"UTF8", b"-ERR UTF8 is not allowed after login"),
    ],
)
def test_login_commands_after_login_are_refused(command: bytes, error: bytes) -> None:
    """checklist #43"""
    assert lines(converse(LOGIN + command + b"\r\n"))[2:] == [error]


def test_quit_before_login_closes_and_deletes_nothing() -> None:
    """checklist #44"""
    store = checklist_store()
    session = new_session(store)
    session.receive_data(b"QUIT\r\n")
    command = session.next_command()
    assert command is not None
    reply = session.handle(command)
    assert reply.close
    assert reply.status == b"+OK Logging out\r\n"
    assert session.state is State.CLOSED
    assert len(store["alice"]) == 3


def test_nothing_after_quit_is_executed() -> None:
    session = new_session()
    out = lines(feed(session, [LOGIN + b"QUIT\r\nDELE 1\r\nSTAT\r\n"]))
    assert out[-1] == b"+OK Logging out, 0 messages deleted"
    assert session.next_command() is None
    assert len(session.store["alice"]) == 3


def test_capa_is_the_same_before_and_after_login() -> None:
    """checklist #46 (no STLS, SASL or per-user values yet): T lists what A lists."""
    out = converse(b"CAPA\r\n" + LOGIN + b"CAPA\r\n")
    before, after = out.split(b"\r\n.\r\n")[:2]
    after = after.split(b"\r\n", 2)[2]
    assert before == after
    assert lines(before + b"\r\n")[1:] == [
        b"TOP",
        b"UIDL",
        b"USER",
        b"SASL PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER",
        b"RESP-CODES",
        b"AUTH-RESP-CODE",
        b"PIPELINING",
        b"UTF8 USER",
        b"LANG",
        b"IMPLEMENTATION fakepop",
    ]


def test_capabilities_follow_the_config() -> None:
    config = ServerConfig(
        top=False, uidl=False, pipelining=False, expire=0, login_delay=900, implementation=None
    )
    out = lines(converse(b"CAPA\r\n" + LOGIN + b"TOP 1 0\r\nUIDL\r\n", config))
    assert out[:7] == [
        b"+OK Capability list follows",
        b"USER",
        b"SASL PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER",
        b"RESP-CODES",
        b"AUTH-RESP-CODE",
        b"EXPIRE 0",
        b"LOGIN-DELAY 900",
    ]
    assert out[-2:] == [b"-ERR Unknown command: TOP", b"-ERR Unknown command: UIDL"]


def test_a_bare_rfc1939_server_has_no_capa() -> None:
    assert lines(converse(b"CAPA\r\n", ServerConfig(capa=False))) == [
        b"-ERR Unknown command: CAPA"
    ]


def test_without_user_pass_only_apop_logs_in() -> None:
    out = lines(converse(b"CAPA\r\nUSER alice\r\n", ServerConfig(user_pass=False)))
    assert b"USER" not in out[1:-2]
    assert out[-1] == b"-ERR Unknown command: USER"


def test_response_codes_can_be_switched_off() -> None:
    out = lines(converse(b"USER alice\r\nPASS wrong\r\n", ServerConfig(resp_codes=False)))
    assert out[1] == b"-ERR Authentication failed"


def test_every_bracketed_reply_is_a_response_code() -> None:
    """checklist #47: any reply text starting with '[' parses as a response code."""
    store = checklist_store()
    holder = new_session(store)
    feed(holder, [LOGIN])
    outputs = [
        feed(new_session(store), [b"USER alice\r\nPASS secret\r\n"]),
        feed(new_session(store), [b"USER alice\r\nPASS wrong\r\n"]),
        converse(b"USER x\r\nPASS y\r\nLIST x\r\nFOO\r\n"),
    ]
    for output in outputs:
        for line in lines(output):
            text = line.split(b" ", 1)[1] if b" " in line else b""
            if text.startswith(b"["):
                assert re.match(rb"\[[\x21-\x2e\x30-\x5c\x5e-\x7e]+(/[^/\]\s]+)*\] ", text), line


def test_expire_zero_deletes_retrieved_mail_only_at_update() -> None:
    store = checklist_store()
    config = ServerConfig(expire=0)
    dropped = new_session(store, config)
    feed(dropped, [LOGIN + b"RETR 2\r\n"])
    dropped.connection_lost()
    assert len(store["alice"]) == 3
    feed(new_session(store, config), [LOGIN + b"RETR 2\r\nQUIT\r\n"])
    mailbox = store["alice"]
    assert len(mailbox) == 2
    assert [m.size for m in mailbox.deleted] == [SIZES[1]]


def test_noop_and_doubled_spaces() -> None:
    out = lines(converse(LOGIN + b"NOOP\r\nLIST  1\r\n"))[2:]
    assert out == [b"+OK", b"-ERR LIST takes at most one argument: a message number"]


def test_pipelined_transaction_commands_are_answered_in_order() -> None:
    """checklist #68"""
    out = lines(converse(LOGIN + b"STAT\r\nLIST 2\r\nUIDL 2\r\nNOOP\r\n"))[2:]
    assert out[0] == f"+OK 3 {TOTAL}".encode()
    assert out[1] == f"+OK 2 {SIZES[1]}".encode()
    assert out[2].startswith(b"+OK 2 uid")
    assert out[3] == b"+OK"


def test_pipelined_login() -> None:
    """checklist #69"""
    out = lines(converse(b"USER alice\r\nPASS secret\r\nSTAT\r\n"))
    assert out == [*LOGGED_IN, f"+OK 3 {TOTAL}".encode()]


def test_data_after_end_of_input_is_a_bug_in_the_caller() -> None:
    session = new_session()
    session.receive_data(b"")
    assert session.client_closed
    with pytest.raises(RuntimeError, match="after end of input"):
        session.receive_data(b"NOOP\r\n")


def test_handle_after_close_is_a_bug_in_the_caller() -> None:
    session = new_session()
    session.receive_data(b"QUIT\r\n")
    command = session.next_command()
    assert command is not None
    session.handle(command)
    with pytest.raises(RuntimeError, match="closed"):
        session.handle(command)


def test_mail_delivered_during_a_session_waits_for_the_next() -> None:
    store = checklist_store()
    session = new_session(store)
    feed(session, [LOGIN])
    store.deliver("alice", "Subject: late\r\n\r\nlate\r\n")
    assert lines(feed(session, [b"STAT\r\nLIST 4\r\nQUIT\r\n"]))[:2] == [
        f"+OK 3 {TOTAL}".encode(),
        b"-ERR No such message: 4",
    ]
    assert lines(feed(new_session(store), [LOGIN + b"STAT\r\n"]))[2].startswith(b"+OK 4 ")


def test_removing_a_user_during_their_session_is_harmless() -> None:
    store = checklist_store()
    session = new_session(store)
    feed(session, [LOGIN + b"DELE 1\r\n"])
    store.remove_user("alice")
    assert lines(feed(session, [b"QUIT\r\n"])) == [
        b"-ERR [SYS/PERM] Mailbox was removed during the session"
    ]
    assert session.state is State.CLOSED
    assert "alice" not in store
    # With nothing to delete, QUIT has nothing to fail at.
    store.add_user("alice", "secret", ["Subject: new\n\n"])
    other = new_session(store)
    feed(other, [LOGIN])
    store.clear()
    assert lines(feed(other, [b"QUIT\r\n"])) == [b"+OK Logging out, 0 messages deleted"]


# -- robustness -----------------------------------------------------------------------

_COMMANDS = st.sampled_from(
    [
        b"USER alice", b"PASS secret", b"PASS wrong", b"STAT", b"LIST", b"LIST 1", b"LIST 9",
        b"RETR 1", b"RETR 3", b"DELE 1", b"DELE 2", b"RSET", b"NOOP", b"TOP 1 1", b"UIDL",
        b"UIDL 2", b"CAPA", b"QUIT", b"APOP bob 0", b"", b"X" * 300,
    ]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    commands=st.lists(st.one_of(_COMMANDS, st.binary(max_size=40)), max_size=25),
    cuts=st.lists(st.integers(min_value=1, max_value=50), max_size=30),
)
def test_any_input_gets_one_reply_per_line_and_never_loses_mail(
    commands: list[bytes], cuts: list[int]
) -> None:
    """Random and sensible commands, cut anywhere: one reply per complete line until QUIT,
    no exception, and no mail removed unless the session quit from TRANSACTION."""
    data = b"".join(c.replace(b"\n", b"") + b"\r\n" for c in commands)
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(data[start : start + cut])
        start += cut
    pieces.append(data[start:])
    store = checklist_store()
    session = new_session(store)
    replies = 0
    quit_reply = False
    for piece in pieces:
        session.receive_data(piece)
        if not piece:  # only once everything has been fed
            break
        while (command := session.next_command()) is not None:
            reply = session.handle(command)
            assert reply.status.startswith((b"+OK", b"-ERR")), reply
            assert reply.status.endswith(b"\r\n")
            assert reply.status.count(b"\r\n") == 1
            assert len(reply.status) <= 512
            replies += 1
            quit_reply = reply.close
    session.connection_lost()
    assert not store["alice"].locked
    if quit_reply:
        assert replies <= data.count(b"\n")
    else:
        # Every complete line was answered, over-long ones once each, and nothing went.
        assert replies == data.count(b"\n")
        assert len(store["alice"]) == 3
    assert len(store["alice"]) + len(session.removed) == 3


def test_store_handed_to_a_session_is_used_live() -> None:
    store = MailStore({"zed": "pw"})
    session = Pop3Protocol(store)
    message = b"Subject: x\r\n\r\nbody\r\n"
    store.deliver("zed", message)
    out = lines(feed(session, [b"USER zed\r\nPASS pw\r\nSTAT\r\n"]))
    assert out[2] == f"+OK 1 {len(message)}".encode()


def test_listings_follow_the_mailbox_as_it_changes() -> None:
    """Listings are shared between sessions that see the same mail, never stale."""

    def listings(session: Pop3Protocol, before: bytes = b"") -> list[bytes]:
        out = lines(feed(session, [before + b"LIST\r\nUIDL\r\n"]))
        return [line for line in out if line[:1].isdigit()]

    store = checklist_store()
    first = new_session(store)
    assert listings(first, LOGIN) == [
        *[f"{n} {size}".encode() for n, size in enumerate(SIZES, 1)],
        b"1 uid000001",
        b"2 uid000002",
        b"3 uid000003",
    ]
    late = store.deliver("alice", "Subject: late\r\n\r\nlate\r\n", uid="late").size
    assert len(listings(first)) == 6  # the session's snapshot does not grow
    feed(first, [b"QUIT\r\n"])
    second = new_session(store)
    assert listings(second, LOGIN)[3:5] == [f"4 {late}".encode(), b"1 uid000001"]
    assert listings(second, b"DELE 2\r\n")[3:] == [b"1 uid000001", b"3 uid000003", b"4 late"]
    feed(second, [b"QUIT\r\n"])
    assert listings(new_session(store), LOGIN) == [
        f"1 {SIZES[0]}".encode(),
        f"2 {SIZES[2]}".encode(),
        f"3 {late}".encode(),
        b"1 uid000001",
        b"2 uid000003",
        b"3 late",
    ]


def test_echoed_client_text_is_made_printable() -> None:
    out = converse(b"X\xff\rY\r\nUSER n\xc3\xa4me\r\n")
    assert out == b"-ERR Unknown command: X??Y\r\n+OK Send PASS for n?me\r\n"


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=25),
    marks=st.lists(st.integers(min_value=1, max_value=25), max_size=25),
)
def test_listings_leave_out_exactly_the_marked_messages(count: int, marks: list[int]) -> None:
    """LIST and UIDL with any set of marks (first, last, adjacent, all) match a listing
    built naively, message by message."""
    messages = {f"u{i}": "x" * i + "\n" for i in range(1, count + 1)}
    store = MailStore({"z": {"password": "pw", "messages": messages}})
    session = new_session(store)
    feed(session, [b"USER z\r\nPASS pw\r\n"])
    for number in marks:
        feed(session, [b"DELE %d\r\n" % number])
    live = [n for n in range(1, count + 1) if n not in marks]
    out = feed(session, [b"LIST\r\nUIDL\r\n"])
    expected_list = b"".join(b"%d %d\r\n" % (n, n + 2) for n in live) + b".\r\n"
    expected_uidl = b"".join(b"%d u%d\r\n" % (n, n) for n in live) + b".\r\n"
    list_reply, uidl_reply = out.split(b"+OK ")[1:]
    assert list_reply.split(b"\r\n", 1)[1] == expected_list
    assert uidl_reply.split(b"\r\n", 1)[1] == expected_uidl


def test_leading_zeros_do_not_change_a_number() -> None:
    """0000000000001 is message 1, and a line count of 0000000000001 is one line."""
    out = lines(converse(LOGIN + b"LIST 0000000000001\r\nTOP 1 0000000000001\r\n"))
    assert out[2] == f"+OK 1 {SIZES[0]}".encode()
    assert out[-2:] == [b"first line", b"."]
