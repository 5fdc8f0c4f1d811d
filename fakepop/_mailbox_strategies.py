"""Hypothesis strategies for accounts and mailboxes: user names, passwords, UIDs, and
whole mailbox dicts that ``Pop3Server``, ``Pop3ServerThread`` and
``@pytest.mark.pop3`` take as they are. ``fakepop.strategies`` exports them.
"""

from __future__ import annotations

import stringprep
import unicodedata

from hypothesis import strategies as st

from . import _message_strategies
from ._saslprep import SaslprepError, saslprep
from ._store import MailboxSpec
from .errors import ConfigError

__all__ = ["mailboxes", "passwords", "uids", "user_names"]

# "PASS " + password + CRLF must fit in one command line: 255 octets (RFC 2449
# section 4, and ServerConfig.max_line_length by default).
_ARGUMENT_OCTETS = 255 - len("PASS \r\n")
_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789._-+@"


def user_names(*, max_size: int = 16) -> st.SearchStrategy[str]:
    """User names fakepop and POP3 clients take: 1 to ``max_size`` characters of
    ASCII letters, digits and ``._-+@``."""
    return st.text(_NAME_ALPHABET, min_size=1, max_size=max_size)


def _password_character(char: str) -> bool:
    # A character SASLprep (RFC 4013) allows on its own, that is not right-to-left
    # (whose bidi rule concerns the whole string) and not a surrogate (poplib sends
    # UTF-8, which cannot carry one).
    if stringprep.in_table_d1(char) or unicodedata.category(char) == "Cs":
        return False
    try:
        saslprep(char)
    except SaslprepError:
        return False
    return True


def _sendable(password: str) -> bool:
    try:
        prepared = saslprep(password)
    except SaslprepError:
        return False
    octets = len(password.encode("utf-8"))
    return bool(prepared.strip()) and password == password.strip() and octets <= _ARGUMENT_OCTETS


def passwords(*, ascii_only: bool = False, max_size: int = 24) -> st.SearchStrategy[str]:
    """Passwords a client can send in ``PASS`` and fakepop accepts: printable ASCII,
    and unless ``ascii_only`` any character SASLprep allows (RFC 4013: accents,
    other scripts, ligatures and full-width forms it normalises, characters it maps
    to nothing, non-ASCII spaces inside). Never empty after SASLprep, no space at either
    end, and short enough for the 255-octet command line."""
    if ascii_only:
        alphabet = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
    else:
        alphabet = st.one_of(
            st.characters(min_codepoint=0x21, max_codepoint=0x7E),
            st.characters(min_codepoint=0xA0).filter(_password_character),
        )
    return st.text(alphabet, min_size=1, max_size=max_size).filter(_sendable)


# For mailboxes(), whose parameter of that name hides this module's function.
_any_passwords = passwords


def uids(*, max_size: int = 70) -> st.SearchStrategy[str]:
    """Unique-ids as RFC 1939 section 7 allows them: 1 to 70 characters from 0x21 to
    0x7E (``max_size`` lowers the 70)."""
    if not 1 <= max_size <= 70:
        raise ConfigError(f"max_size must be from 1 to 70 (RFC 1939 section 7), not {max_size!r}")
    return st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=max_size
    )


def mailboxes(
    messages: st.SearchStrategy[object] | None = None,
    *,
    users: st.SearchStrategy[str] | None = None,
    passwords: st.SearchStrategy[str] | None = None,
    min_users: int = 1,
    max_users: int = 3,
    min_messages: int = 0,
    max_messages: int = 5,
    with_uids: bool = True,
) -> st.SearchStrategy[dict[str, MailboxSpec]]:
    """Mailbox dicts, ``{user: {"password": ..., "messages": ...}}``, that
    ``Pop3Server``, ``Pop3ServerThread``, ``MailStore`` and ``@pytest.mark.pop3``
    take as they are.

    ``messages`` draws each message (default: ``messages()`` of this module);
    ``users`` and ``passwords`` draw the accounts (defaults: ``user_names()`` and
    ``passwords()``). With ``with_uids`` each mailbox's messages are a dict of
    ``uids()`` to message, unique within the mailbox, so every session sees the same
    UID for a message; without, a list, which fakepop numbers ``uid000001``, ...
    """
    for name, value in (
        ("min_users", min_users),
        ("max_users", max_users),
        ("min_messages", min_messages),
        ("max_messages", max_messages),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a whole number from 0, not {value!r}")
    if messages is None:
        messages = _message_strategies.messages()
    mail: st.SearchStrategy[object]
    if with_uids:
        mail = st.dictionaries(uids(), messages, min_size=min_messages, max_size=max_messages)
    else:
        mail = st.lists(messages, min_size=min_messages, max_size=max_messages)
    if passwords is None:
        passwords = _any_passwords()
    spec = st.fixed_dictionaries({"password": passwords, "messages": mail})
    return st.dictionaries(
        users if users is not None else user_names(),
        spec,
        min_size=min_users,
        max_size=max_users,
    )
