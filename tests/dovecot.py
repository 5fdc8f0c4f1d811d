"""A real Dovecot for the differential tests, and the scripted sessions they run
against it and against fakepop.

:class:`Dovecot` starts ``dovecot -F -c CONF`` in the foreground as a subprocess, with
everything it needs in a directory of the test's own: the configuration, a
passwd-file with plain passwords, one Maildir per account, its base and state
directories and its log. Nothing outside that directory is read or written, and
:meth:`Dovecot.stop` ends the process. Dovecot refuses to touch mail as root, so its
mail processes run as ``nobody``, chrooted into the directory's ``mail/``; starting it
therefore needs root, and :func:`dovecot_unavailable` says why it cannot be started
when it cannot.

A :class:`Scenario` is a script: lines to send (several in one write, when pipelined),
on one or more connections, each answered by one reply whose shape (one line, or
lines up to a dot) follows from the command. :func:`run_scenario` plays it against an
address and returns what was said, normalised only where two honest servers must
differ (the random CRAM-MD5 challenge), so that two servers can be compared line by
line; :func:`behaviour` keeps of that only what a client can act on, for comparing a
server that words its replies differently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "UIDVALIDITY",
    "Account",
    "Dovecot",
    "Scenario",
    "behaviour",
    "connect",
    "cram_md5",
    "dovecot_unavailable",
    "run_all",
    "run_scenario",
    "send",
    "starttls",
    "uidl",
    "unified",
]

#: The UIDVALIDITY every Maildir is given, so that Dovecot's UIDL values are known in
#: advance (its default ``pop3_uidl_format`` is ``%08Xu%08Xv``) and fakepop can be
#: given the same ones.
UIDVALIDITY = 1700000000
#: How long a reply may take before the script gives up on it (the wait of a step
#: that waits for a delay comes on top). After one failed login Dovecot slows the
#: next logins from the same address down by seconds (its auth penalty).
REPLY_TIMEOUT = 10.0
#: How long a connection may stay silent at the end before it counts as still open.
END_TIMEOUT = 2.0
# Seconds Dovecot has to start listening.
_START_TIMEOUT = 20.0


def uidl(number: int) -> str:
    """Dovecot's UIDL for the ``number``-th message of a Maildir made here."""
    return f"{number:08x}{UIDVALIDITY:08x}"


@dataclass(frozen=True)
class Account:
    """A user both servers know: the password and the mail, in wire form (CRLF)."""

    password: str
    messages: tuple[bytes, ...] = ()

    def fakepop_mailbox(self) -> dict[str, object]:
        """The same account as a fakepop mailbox dict, with Dovecot's UIDs."""
        return {
            "password": self.password,
            "messages": {uidl(n): data for n, data in enumerate(self.messages, 1)},
        }


def dovecot_unavailable() -> str | None:
    """Why a Dovecot cannot be started here, or None if it can."""
    if _dovecot_binary() is None:
        return "Dovecot is not installed (apt-get install dovecot-core dovecot-pop3d)"
    if os.geteuid() != 0:
        return "starting Dovecot needs root (its mail processes chroot and change user)"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "there is no user 'nobody' for Dovecot's mail processes to run as"
    return None


def _dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found is None and Path("/usr/sbin/dovecot").exists():
        found = "/usr/sbin/dovecot"
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# What the recorded sessions of /work/shared/reference show (Dovecot 2.3 on Debian):
# its greeting, SASL PLAIN LOGIN CRAM-MD5, no APOP, pop3_lock_session = yes. The
# failed-login delay is shortened from 2 s to 1 s (its smallest value but 0).
_CONFIG = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
instance_name = fakepop-differential
login_greeting = Dovecot (Debian) ready.
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
auth_failure_delay = {failure_delay} secs
default_internal_user = root
default_internal_group = root
default_login_user = {login_user}
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_chroot = {root}/mail
mail_location = maildir:~/Maildir
pop3_lock_session = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
  default_fields = home=/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


class Dovecot:
    """A Dovecot POP3 server of the test's own, on 127.0.0.1 and a free port.

    ``root`` must be an empty directory; ``certificate`` is the (certificate chain,
    private key) PEM pair it offers with STLS.
    """

    #: auth_failure_delay, in whole seconds: how long Dovecot waits before it refuses a
    #: login (2 by default). It flushes refusals twice a second and compares whole
    #: seconds, so the wait is anything from about half of it to one second more.
    failed_login_delay = 2
    #: How long Dovecot waits for another session's lock before [IN-USE] (fixed: 10 s).
    lock_wait = 10.0

    def __init__(
        self, root: Path, accounts: Mapping[str, Account], certificate: tuple[bytes, bytes]
    ) -> None:
        self.root = root
        self.accounts = dict(accounts)
        self.certificate = certificate
        self.host = "127.0.0.1"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        """Dovecot's log so far (for failure messages)."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        binary = _dovecot_binary()
        assert binary is not None, dovecot_unavailable()
        self._write_files()
        config = self.root / "dovecot.conf"
        self._process = subprocess.Popen(
            [binary, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert process.stderr is not None
        process.stderr.close()

    def _wait_listening(self) -> None:
        # Dovecot opens its listeners before it logs that it starts up; connecting is
        # the one way to know, so try until it works, the process dies or time is up.
        process = self._process
        assert process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if process.poll() is not None:
                assert process.stderr is not None
                problem = process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"Dovecot did not start: {problem}{self.log}")
            try:
                address = (self.host, self.port)
                with socket.create_connection(address, timeout=REPLY_TIMEOUT) as probe:
                    probe.settimeout(REPLY_TIMEOUT)
                    if probe.recv(100).startswith(b"+OK"):
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Dovecot is not listening: {self.log}") from None
                time.sleep(0.05)  # sleep-ok: polls a starting process, with a deadline

    def _write_files(self) -> None:
        root = self.root
        self.port = _free_port()
        nobody = pwd.getpwnam("nobody")
        login_user = "dovenull"
        try:
            pwd.getpwnam(login_user)
        except KeyError:
            login_user = "nobody"
        chain, key = self.certificate
        (root / "cert.pem").write_bytes(chain)
        (root / "key.pem").write_bytes(key)
        (root / "key.pem").chmod(0o600)
        (root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=root,
                port=self.port,
                failure_delay=self.failed_login_delay,
                login_user=login_user,
                mail_uid=nobody.pw_uid,
                mail_gid=nobody.pw_gid,
            )
        )
        (root / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{a.password}::::::\n" for user, a in self.accounts.items())
        )
        mail = root / "mail"
        for user, account in self.accounts.items():
            maildir = mail / user / "Maildir"
            for sub in ("cur", "new", "tmp"):
                (maildir / sub).mkdir(parents=True)
            # The uidlist fixes each message's UID and the mailbox's UIDVALIDITY.
            names = [f"{UIDVALIDITY}.M{n}.fakepop" for n in range(1, len(account.messages) + 1)]
            for name, data in zip(names, account.messages, strict=True):
                (maildir / "cur" / f"{name}:2,").write_bytes(data)
            (maildir / "dovecot-uidlist").write_text(
                f"3 V{UIDVALIDITY} N{len(names) + 1}\n"
                + "".join(f"{n} :{name}\n" for n, name in enumerate(names, 1))
            )
        for path in [mail, *mail.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)


# -- scripted sessions -------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    """Lines written in one go on connection ``on``, each answered by one reply."""

    lines: tuple[str, ...]
    on: str = "A"
    #: The name of a delay (a key of the ``delays`` given to run_scenario) the reply
    #: to line ``wait_line`` must come after, or None.
    wait: str | None = None
    wait_line: int = 0
    #: How many replies to read (None: one per line); fewer when the lines after it
    #: are not meant to be read as commands (behind STLS).
    replies: int | None = None


@dataclass(frozen=True)
class CramMd5:
    """Answer the CRAM-MD5 challenge just received, for ``user`` and ``password``."""

    user: str
    password: str
    on: str = "A"


@dataclass(frozen=True)
class StartTls:
    """Start TLS on connection ``on`` (after the +OK to STLS)."""

    on: str = "A"


@dataclass(frozen=True)
class Connect:
    """Open connection ``on`` and read its greeting (A opens by itself)."""

    on: str


Step = Send | CramMd5 | StartTls | Connect


def send(
    *lines: str, on: str = "A", wait: str | None = None, wait_line: int = 0,
    replies: int | None = None,
) -> Send:
    """Send ``lines`` in one write (CRLF added unless a line ends in LF)."""
    return Send(lines, on, wait, wait_line, replies)


def cram_md5(user: str, password: str, on: str = "A") -> CramMd5:
    return CramMd5(user, password, on)


def starttls(on: str = "A") -> StartTls:
    return StartTls(on)


def connect(on: str) -> Connect:
    return Connect(on)


@dataclass(frozen=True)
class Scenario:
    """A scripted session (or several at once) for one account of its own."""

    name: str
    steps: tuple[Step, ...]
    #: The account's mail; its user name is the scenario's name.
    messages: tuple[bytes, ...] = ()
    password: str = "secret"

    @property
    def user(self) -> str:
        return self.name

    @property
    def account(self) -> Account:
        return Account(self.password, self.messages)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _values(scenario: Scenario) -> dict[str, str]:
    user, password = scenario.user, scenario.password
    return {
        "{user}": user,
        "{password}": password,
        "{plain}": _b64(f"\0{user}\0{password}"),
        "{plain_wrong}": _b64(f"\0{user}\0wrong"),
        "{user64}": _b64(user),
        "{password64}": _b64(password),
    }


def _expand(line: str, values: Mapping[str, str]) -> bytes:
    for name, value in values.items():
        line = line.replace(name, value)
    data = line.encode("utf-8", "surrogateescape")
    return data if data.endswith(b"\n") else data + b"\r\n"


# Replies to these commands are lines up to a dot when they are +OK (LIST, UIDL, AUTH
# and LANG only without an argument).
_ALWAYS_MULTILINE = frozenset({b"CAPA", b"RETR", b"TOP"})
_MULTILINE_WITHOUT_ARGUMENT = frozenset({b"LIST", b"UIDL", b"AUTH", b"LANG"})
# A reply is late when it comes after this share of the delay: Dovecot's refusals
# come anything from about half the delay to a second more after the login.
_LATE = 0.4
_source_addresses = itertools.count(1)
_source_lock = threading.Lock()


def _next_source() -> str:
    # Each connection comes from an address of its own in 127.0.0.0/8: Dovecot slows
    # down logins from an address that recently failed one (its auth penalty), and
    # the scenarios must not slow each other down.
    with _source_lock:
        n = next(_source_addresses)
    return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{(n & 255) or 1}"


def _multiline(line: bytes) -> bool:
    keyword, _, argument = line.rstrip(b"\r\n").partition(b" ")
    keyword = keyword.upper()
    if keyword in _ALWAYS_MULTILINE:
        return True
    return keyword in _MULTILINE_WITHOUT_ARGUMENT and not argument.strip(b" ")


class _Connection:
    # One client connection: reads lines with a timeout, notes the end of the stream.
    def __init__(self, name: str, address: tuple[str, int]) -> None:
        self.name = name
        self.sock: socket.socket | ssl.SSLSocket = socket.socket()
        self.sock.bind((_next_source(), 0))
        self.sock.settimeout(REPLY_TIMEOUT)
        self.sock.connect(address)
        self.buffer = b""
        self.closed = False

    def read_line(self, timeout: float) -> bytes | None:
        """The next line (CRLF included), or None at the end of the stream."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                data = b""  # reset, or TLS ended without its close alert
            if not data:
                self.closed = True
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def close(self) -> None:
        self.sock.close()


def run_scenario(
    scenario: Scenario, address: tuple[str, int], delays: Mapping[str, float]
) -> list[str]:
    """Play ``scenario`` against the server at ``address``; what was said, one string
    per line: ``A> line`` for the client, ``A< line`` for the server (``A< | line``
    inside a multi-line reply), and notes such as ``A< (closed)``.

    ``delays`` maps the names a step waits for (``Send.wait``) to that server's
    duration: a reply that comes after 40 % of it is noted ``(after the NAME
    delay)``, one that comes sooner ``(without the NAME delay)``.
    """
    player = _Player(scenario, address, delays)
    try:
        for step in scenario.steps:
            player.play(step)
        player.finish()
    finally:
        for conn in player.connections.values():
            conn.close()
    return player.said


class _Player:
    # Plays one scenario, step by step, writing down what was said.
    def __init__(
        self, scenario: Scenario, address: tuple[str, int], delays: Mapping[str, float]
    ) -> None:
        self.scenario = scenario
        self.address = address
        self.delays = delays
        self.values = _values(scenario)
        self.connections: dict[str, _Connection] = {}
        self.said: list[str] = []
        self.challenges: dict[str, bytes] = {}

    def play(self, step: Step) -> None:
        if isinstance(step, Connect):
            self.connect(step.on)
            return
        conn = self.connections.get(step.on) or self.connect(step.on)
        if conn.closed:
            self.said.append(f"{step.on}> (not sent: the connection is closed)")
        elif isinstance(step, StartTls):
            self.start_tls(conn)
        else:
            self.send(conn, step)

    def connect(self, name: str) -> _Connection:
        conn = _Connection(name, self.address)
        self.connections[name] = conn
        self.said.append(f"{name}: connected")
        self.reply(conn, multiline=False, timeout=REPLY_TIMEOUT)
        return conn

    def start_tls(self, conn: _Connection) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the harness compares protocol, not trust
        assert not conn.buffer, "octets received before the TLS handshake"
        try:
            conn.sock = context.wrap_socket(conn.sock, server_hostname="localhost")
            self.said.append(f"{conn.name}: TLS started")
        except (ssl.SSLError, OSError) as problem:
            self.said.append(f"{conn.name}: TLS failed ({type(problem).__name__})")
            conn.closed = True

    def send(self, conn: _Connection, step: Send | CramMd5) -> None:
        tag = conn.name
        if isinstance(step, CramMd5):
            challenge = base64.b64decode(self.challenges.get(tag, b""))
            digest = hmac.new(step.password.encode(), challenge, hashlib.md5).hexdigest()
            lines = [_b64(f"{step.user} {digest}").encode() + b"\r\n"]
            self.said.append(f"{tag}> (CRAM-MD5 response for {step.user}, {step.password})")
            wait, wait_line, count = None, 0, None
        else:
            lines = [_expand(line, self.values) for line in step.lines]
            self.said.extend(f"{tag}> {_show(line)}" for line in lines)
            wait, wait_line, count = step.wait, step.wait_line, step.replies
        started = time.monotonic()
        try:
            conn.sock.sendall(b"".join(lines))
        except OSError:
            self.said.append(f"{tag}> (not sent: the connection is closed)")
            conn.closed = True
            return
        timeout = REPLY_TIMEOUT + (self.delays[wait] if wait is not None else 0)
        for number, line in enumerate(lines[:count]):
            if not self.reply(conn, multiline=_multiline(line), timeout=timeout):
                break
            if wait is not None and number == wait_line:
                late = time.monotonic() - started >= _LATE * self.delays[wait]
                self.said.append(f"{tag}< ({'after' if late else 'without'} the {wait} delay)")

    def reply(self, conn: _Connection, *, multiline: bool, timeout: float) -> bool:
        # Reads one reply; False once the connection has ended.
        tag = conn.name
        try:
            status = conn.read_line(timeout)
        except TimeoutError:
            self.said.append(f"{tag}< (no reply)")
            return True
        if status is None:
            self.said.append(f"{tag}< (closed)")
            return False
        self.said.append(f"{tag}< {_show(status)}")
        if status.startswith(b"+ "):
            self.challenges[tag] = status[2:].rstrip(b"\r\n")
        while multiline and status.startswith(b"+OK"):
            try:
                line = conn.read_line(REPLY_TIMEOUT)
            except TimeoutError:
                self.said.append(f"{tag}< (no end of the reply)")
                return True
            if line is None:
                self.said.append(f"{tag}< (closed)")
                return False
            self.said.append(f"{tag}< | {_show(line)}")
            if line == b".\r\n":
                break
        return True

    def finish(self) -> None:
        # Whatever else the servers say until they close the connections.
        for name, conn in self.connections.items():
            while not conn.closed or conn.buffer:
                try:
                    line = conn.read_line(END_TIMEOUT)
                except TimeoutError:
                    self.said.append(f"{name}< (still open)")
                    break
                if line is None:
                    self.said.append(f"{name}< (closed)")
                    break
                self.said.append(f"{name}< {_show(line)}")


def _show(line: bytes) -> str:
    # A line as text, its line ending spelled out; CRAM-MD5 challenges (random and
    # timestamped on every server) become a placeholder.
    text = line.decode("utf-8", "backslashreplace")
    body = text.rstrip("\r\n")
    ending = text[len(body) :].replace("\r", "\\r").replace("\n", "\\n")
    if body.startswith("+ ") and _is_msg_id(body[2:]):
        body = "+ <CRAM-MD5 challenge>"
    if len(body) > 120:
        body = f"{body[:60]}...({len(body)} characters)...{body[-20:]}"
    return body + ending


def _is_msg_id(text: str) -> bool:
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return decoded.startswith(b"<") and decoded.endswith(b">") and b"@" in decoded


def run_all(
    scenarios: Sequence[Scenario],
    address: tuple[str, int],
    delays: Mapping[str, float],
) -> dict[str, list[str]]:
    """Every scenario at once, each in a thread (they share no account)."""
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def play(scenario: Scenario) -> None:
        try:
            results[scenario.name] = run_scenario(scenario, address, delays)
        except BaseException as problem:  # reported in the test's thread
            errors.append(problem)

    threads = [threading.Thread(target=play, args=(s,), daemon=True) for s in scenarios]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def unified(expected: list[str], got: list[str]) -> Iterator[str]:
    """A diff of two transcripts, for failure messages."""
    import difflib  # noqa: PLC0415

    return difflib.unified_diff(expected, got, "dovecot", "fakepop", lineterm="", n=2)



def behaviour(said: list[str]) -> list[str]:
    """What a client can act on in a transcript, without the wording: each status line
    cut to its indicator and response code (``+OK``, ``-ERR [AUTH]``); payloads,
    challenges, closes and delays kept."""
    return [_behaviour(line) for line in said]


def _behaviour(line: str) -> str:
    tag, arrow, rest = line.partition("< ")
    if not arrow or not rest.startswith(("+OK", "-ERR")):
        return line
    indicator, _, text = rest.partition(" ")
    indicator = indicator.removesuffix("\\r\\n")
    if text.startswith("[") and "]" in text:
        indicator += " " + text[: text.index("]") + 1]
    return f"{tag}< {indicator}"
