"""One connection's conversation, over a Trio stream.

A :class:`Session` moves bytes between the stream and its :class:`Pop3Protocol`,
carries out the faults that fire (fakepop.faults decides, the session waits, writes
and closes), and records what happened. Two rules hold here, in one place:

- A reply is recorded as its write starts (after any delay a fault imposed), as it
  goes over the wire (after the faults that rewrote or cut it), and taken back if the
  write does not finish: the record never holds a reply the client could not get,
  and a client that has read a reply finds it there. A fault is recorded when it
  fires, so a delayed reply shows after its delay.
- The last reply of a session (QUIT's, after UPDATE removed the marked mail) is
  written even when the server is stopped or reset at that instant: the client
  either hears ``+OK`` and its mail is gone, or (stopped before QUIT ran) nothing was
  deleted. Stopping gives that write a short grace, so a client that does not read
  cannot hold the server up.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from ._config import ServerConfig
from ._fault_engine import LoginFaults, ReplyPlan, context_for, fire, plan_reply
from ._fault_types import Close, Delay, Stage, Stall
from ._idle import SCOPE_DEADLINES, IdleTimer
from ._protocol import Pop3Protocol
from ._replies import Command, Reply
from ._session_record import EndReason
from ._state import State
from ._store import MailStore
from ._stream_io import prepare_close, send_reply
from ._virtual_time import check_timer
from .faults import FaultSet

__all__ = ["Recorder", "Session"]

_RECEIVE_SIZE = 16384
# How long a session's last reply may still take once the server is stopping.
_FINAL_WRITE_GRACE = 1.0


class Recorder(Protocol):
    # What a session tells the transcript (SessionRecorder, or nothing at all).
    def command(self, command: Command) -> None: ...
    def exchange(
        self, command: Command, reply: Reply, state: State | None, user: str | None
    ) -> None: ...
    def reply(self, reply: Reply, state: State | None = None, user: str | None = None) -> None: ...
    def event(self, text: str) -> None: ...
    def unsent(self, reason: str) -> None: ...
    def end(self, reason: EndReason, removed: Sequence[str] = ()) -> None: ...


class Session:
    """A POP3 session over one connection; ``run()`` it, then close its ``stream``
    with :func:`close_stream`."""

    def __init__(
        self,
        number: int,
        stream: trio.abc.Stream,
        *,
        store: MailStore,
        config: ServerConfig,
        faults: FaultSet,
        recorder: Recorder,
        ssl_context: ssl.SSLContext | None,
        clock: Callable[[], float],
        idle_timer: IdleTimer = SCOPE_DEADLINES,
    ) -> None:
        #: The session's number, shared by the transcript and the faults.
        self.number = number
        #: The connection: the socket stream, then (after STLS) TLS around it.
        self.stream = stream
        self.recorder = recorder
        self._faults = faults
        self._ssl_context = ssl_context
        self._autologout = config.autologout
        self._idle_timer = idle_timer
        #: Until when the session waits for a command (the autologout timer's end);
        #: math.inf while a command runs and its reply is written.
        self.idle_until = math.inf
        # The run's clock (a MockClock in tests that use one), without the lookup that
        # trio.current_time() repeats on every call; the server's, shared by sessions.
        self._clock = clock
        self.protocol = Pop3Protocol(
            store,
            config,
            clock=clock,
            tls_available=ssl_context is not None,
            login_gate=LoginFaults(faults, number, recorder),
        )
        #: Everything the session does; the server cancels it to stop the session, and
        #: the autologout timer when the client has been idle too long.
        self.scope = trio.CancelScope()
        # Set when the session is asked to end (stop(), or IdleWatch's time_out()), so
        # that a pipelined command is not run after it: cheaper to test than
        # scope.cancel_called, which reads the clock for a deadline only SCOPE_DEADLINES
        # sets.
        self._stopped = False
        self._timed_out = False
        self._deadline_timer = idle_timer is SCOPE_DEADLINES
        # How the session ends, once its last reply is being written: from then on the
        # scope is shielded, and stopping gives that write a grace instead.
        self._last_reply: EndReason | None = None

    def stop(self) -> None:
        """End the session at its next checkpoint, without UPDATE; a last reply being
        written gets a short grace to finish."""
        self._stopped = True
        if self._last_reply is None:
            self.scope.cancel()
        else:
            grace = self._clock() + _FINAL_WRITE_GRACE
            self.scope.deadline = min(self.scope.deadline, grace)

    def time_out(self) -> None:
        """End the session at its next checkpoint: the autologout timer ran out."""
        self._timed_out = True
        self.scope.cancel()

    async def run(self, *, implicit_tls: bool = False) -> EndReason:
        """Converse until the session ends; how it ended. Raises what went wrong
        inside the server, and trio's stream errors when the client went away."""
        with self.scope:
            if implicit_tls and not await self._start_tls():
                return EndReason.TLS_FAILED
            return await self._converse()
        if self._last_reply is not None:
            return self._last_reply  # stopped, and the grace ran out: the reply is unsent
        return self._cancelled()

    def _asked_to_end(self) -> bool:
        # stop() or time_out() was called, or the scope's deadline (the timer, with
        # SCOPE_DEADLINES) has passed.
        return self._stopped or self._timed_out or (
            self._deadline_timer and self.scope.cancel_called
        )

    def _cancelled(self) -> EndReason:
        # Why the session's scope was cancelled: stop(), or the autologout timer
        # (which must not have fired only because an autojumping clock jumped).
        if self._stopped:
            return EndReason.SERVER_STOPPED
        check_timer("autologout timer", self._autologout, self.number)
        return EndReason.TIMEOUT

    async def _converse(self) -> EndReason:
        protocol = self.protocol
        if self._faults:
            ended = await self._connect_faults()
            if ended is not None:
                return ended
        if await self.write(protocol.greeting(), None):
            return EndReason.FAULT
        # RFC 1939 section 3: after the autologout time without a command the session
        # ends silently, without UPDATE. The wait starts afresh with each read (a
        # client sending a line slowly is not idle), and ends when a command is whole.
        timer = self._idle_timer
        waiting = False
        while True:
            command = protocol.next_command()
            if command is None:
                if protocol.client_closed:
                    return EndReason.CLIENT_CLOSED
                timer.waiting(self, self._clock() + self._autologout)
                waiting = True
                protocol.receive_data(await self.stream.receive_some(_RECEIVE_SIZE))
                continue
            if self._asked_to_end():
                # Stopped (or idle too long): pipelined commands already received are
                # not executed.
                return self._cancelled()
            if waiting:  # not for each of a batch of pipelined commands
                timer.busy(self)  # a slow client reading a reply is not idle
                waiting = False
            ended = await self._execute(command)
            if ended is not None:
                return ended

    async def _execute(self, command: Command) -> EndReason | None:
        # Faults, then the command, then its reply; how the session ended, if it did.
        protocol = self.protocol
        state = protocol.state
        if self._faults:
            return await self._execute_with_faults(command, state)
        # With no faults, handling the command records nothing and cannot wait, so
        # recording the command after it is recording it as it arrived.
        try:
            reply = protocol.handle(command)
        except BaseException:
            self.recorder.command(command)  # the command that broke the server
            raise
        if reply.delay or reply.close or reply.starttls or reply.followed_by:
            if reply.delay:
                self.recorder.command(command)  # in the transcript while the reply waits
            return await self._answer(
                command, reply, state, instead=False, recorded=bool(reply.delay)
            )
        # Most replies: nothing can fire at them, nothing waits before them, and the
        # session goes on. The command and its reply are recorded in one go as the
        # write starts (the reply taken back if the write does not finish).
        entered = None if protocol.state is state else protocol.state
        self.recorder.exchange(command, reply, entered, protocol.user)
        await self._send_recorded(reply)
        return None

    async def _execute_with_faults(self, command: Command, state: State) -> EndReason | None:
        self.recorder.command(command)
        outcome = await self._command_faults(command)
        if isinstance(outcome, EndReason):
            return outcome
        if outcome is None:
            reply = self.protocol.handle(command)
            return await self._answer(command, reply, state, instead=False, recorded=True)
        return await self._answer(command, outcome, state, instead=True, recorded=True)

    async def _answer(
        self, command: Command, reply: Reply, state: State, *, instead: bool, recorded: bool
    ) -> EndReason | None:
        # Write the reply (and a notice after it), after any delay it asks for; how the
        # session ended, if it did. ``instead``: a fault's reply, not the command's;
        # ``recorded``: the command is in the transcript already (else it goes in with
        # its reply).
        protocol = self.protocol
        entered = None if protocol.state is state else protocol.state
        if reply.delay:
            await trio.sleep(reply.delay)  # a refused login's delay, on trio's clock
        # How the session ends if this reply, or the notice a server that hangs up
        # sends after it, is its last; set before the last write, which stop() then
        # lets finish within a grace (see write and run).
        last = reply.followed_by if reply.followed_by is not None else reply
        ending = None
        if last.close:
            hung_up = EndReason.HUNG_UP if protocol.hung_up else EndReason.QUIT
            ending = EndReason.FAULT if instead else hung_up
        if reply.close:
            self._last_reply = ending
        if await self.write(reply, command, entered, command_recorded=recorded):
            return EndReason.FAULT
        if reply.followed_by is not None:
            if reply.followed_by.close:
                self._last_reply = ending
            if await self.write(reply.followed_by, None):
                return EndReason.FAULT
        if self._last_reply is not None:
            return self._last_reply
        if reply.starttls and not await self._start_tls():
            return EndReason.TLS_FAILED
        return None

    # -- writing replies --------------------------------------------------------------
    async def write(
        self,
        reply: Reply,
        command: Command | None,
        entered: State | None = None,
        *,
        command_recorded: bool = True,
    ) -> bool:
        """Send a reply, shaped or broken by the faults that fire at it, and record it
        as written; True if a fault ended the connection. ``entered``: the state the
        command led to, if it changed; without ``command_recorded``, the command is
        recorded with its reply (or before the faults that fire at it)."""
        if reply.close and self._asked_to_end():
            # The last reply, but stopping already: no more than the grace.
            grace = self._clock() + _FINAL_WRITE_GRACE
            with trio.CancelScope(shield=True, deadline=grace):
                return await self._write(reply, command, entered, command_recorded)
            return False  # the grace ran out: the client did not take the reply
        if reply.close:
            # The session's last reply: what it reports has happened (QUIT's UPDATE).
            # Shielding the session's own scope from here on is cheaper than a scope
            # of its own; stop() then gives the write a grace (and run() says how the
            # session ended if it runs out).
            self.scope.shield = True
        return await self._write(reply, command, entered, command_recorded)

    async def _write(
        self,
        reply: Reply,
        command: Command | None,
        entered: State | None,
        command_recorded: bool,
    ) -> bool:
        fired = []
        context = None
        if self._faults:
            if not command_recorded and command is not None:
                self.recorder.command(command)  # before whatever the faults do or raise
                command_recorded = True
            context = context_for(self.number, self.protocol, command)
            fired = list(fire(self._faults, Stage.REPLY, context))
        user = self.protocol.user
        if not fired:
            # Recorded as the write starts, so a client that has read the reply finds
            # it in the transcript; taken back if the write does not finish.
            if command_recorded or command is None:
                self.recorder.reply(reply, entered, user)
            else:
                self.recorder.exchange(command, reply, entered, user)
            await self._send_recorded(reply)
            return False
        assert context is not None
        for item in fired:
            self.recorder.event(f"fault: {item.armed.fault}")
        plan = plan_reply(reply, fired, context)
        if plan.delay:
            await trio.sleep(plan.delay)
        recorded = self._record_written(plan.octets, reply, entered, user)
        try:
            await self._send_planned(plan)
        except BaseException as exc:
            if recorded:
                self._unsent(exc)
            raise
        if plan.close is not None:
            prepare_close(self.stream, reset=plan.close.reset)
            return True
        return False

    async def _send_recorded(self, reply: Reply) -> None:
        # Write a reply recorded just now, whole: if the write does not finish, the
        # record is taken back, so the transcript never shows a reply not sent.
        try:
            await send_reply(self.stream, reply)
        except BaseException as exc:
            self._unsent(exc)
            raise

    async def _send_planned(self, plan: ReplyPlan) -> None:
        # The octets in one write, or in pieces with pauses (slicing, bandwidth).
        octets = plan.octets
        if plan.chunk is None:
            if octets:
                await self.stream.send_all(octets)
            return
        for start in range(0, len(octets), plan.chunk):
            piece = octets[start : start + plan.chunk]
            await self.stream.send_all(piece)
            pause = plan.pause_after(len(piece))
            if pause:
                await trio.sleep(pause)

    def _unsent(self, exc: BaseException) -> None:
        # Takes the reply recorded last back: its write was cut short by ``exc``.
        reason = "server stopped" if isinstance(exc, trio.Cancelled) else "client gone"
        self.recorder.unsent(reason)

    def _record_written(
        self, octets: bytes, reply: Reply, entered: State | None, user: str | None
    ) -> bool:
        # What a fault lets through, as the client gets it: the status line if it goes
        # out whole, and what follows it. False if no reply line was recorded.
        end = octets.find(b"\n") + 1
        if not end:
            if octets:
                self.recorder.event(f"sent {len(octets)} octets of a status line: {octets!r}")
            return False
        payload = octets[end:]
        if reply.payload is not None and payload == reply.payload:
            lines = reply.lines
        else:
            lines = payload.count(b"\n") - (1 if payload.endswith(b"\n.\r\n") else 0)
            lines -= 1 if payload == b".\r\n" else 0
        # As it went over the wire: the status line as sent, the payload that followed.
        written = Reply(octets[:end], payload or None, lines=max(lines, 0))
        self.recorder.reply(written, entered, user)
        return True

    # -- faults at connection, command and login ----------------------------------------
    async def _connect_faults(self) -> EndReason | None:
        context = context_for(self.number, self.protocol, None)
        for fired in fire(self._faults, Stage.CONNECT, context):
            self.recorder.event(f"fault: {fired.armed.fault}")
            ended = await self._carry_out(fired.action, fired.jitter)
            if ended is not None:
                return ended
        return None

    async def _command_faults(self, command: Command) -> Reply | EndReason | None:
        # A reply to send instead of executing the command (-ERR or a hook's +OK), how
        # the session ended, or None to execute the command as usual.
        context = context_for(self.number, self.protocol, command)
        for fired in fire(self._faults, Stage.COMMAND, context):
            self.recorder.event(f"fault: {fired.armed.fault}")
            refusal = fired.refusal
            if refusal is not None:
                return self.protocol.refuse(command, *refusal)
            answer = fired.answer
            if answer is not None:
                return self.protocol.answer_instead(command, answer)
            ended = await self._carry_out(fired.action, fired.jitter)
            if ended is not None:
                return ended
        return None

    async def _carry_out(self, action: object, jitter: float) -> EndReason | None:
        # Close, Delay or Stall at a connection or command: how the session ended, if it did.
        if isinstance(action, Delay):
            await trio.sleep(action.seconds + jitter)
            return None
        if isinstance(action, Close):
            prepare_close(self.stream, reset=action.reset)
            return EndReason.FAULT
        if isinstance(action, Stall):
            # Answer nothing; read and drop what the client sends until it gives up.
            while await self.stream.receive_some(_RECEIVE_SIZE):
                pass
            return EndReason.FAULT
        raise TypeError(f"cannot carry out {action!r} here")

    # -- TLS -------------------------------------------------------------------------
    async def _start_tls(self) -> bool:
        """Wrap the connection in TLS and shake hands; False (recorded) if that failed.

        A client that does not complete the handshake within the autologout time is
        treated as gone, like any idle client."""
        assert self._ssl_context is not None
        tls = trio.SSLStream(self.stream, self._ssl_context, server_side=True)
        self.stream = tls
        try:
            with trio.fail_after(self._autologout):
                await tls.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            if isinstance(exc, trio.TooSlowError):
                check_timer("TLS handshake timeout", self._autologout, self.number)
            reason = exc.__cause__ or exc
            self.recorder.event(f"TLS handshake failed: {type(reason).__name__}: {reason}")
            return False
        self.protocol.tls_started()
        cipher = tls.cipher()
        self.recorder.event(
            f"TLS started: {tls.version()} {cipher[0] if cipher else ''}".rstrip()
        )
        return True
