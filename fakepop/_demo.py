"""The built-in demo mailboxes that ``python -m fakepop`` serves.

A handful of realistic messages that exercise the awkward corners of POP3 and of mail
clients: dot-stuffing, 8-bit UTF-8 bodies with an RFC 2047 encoded Subject, and a
multipart message with an attachment. Every call to :func:`demo_mailboxes` returns a
fresh dict, so a server built from it starts with all the mail in place.
"""

from __future__ import annotations

from ._store import MailboxSpec

__all__ = ["DEMO_PASSWORD", "DEMO_USER", "SECOND_PASSWORD", "SECOND_USER", "demo_mailboxes"]

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
SECOND_USER = "alice"
SECOND_PASSWORD = "wonderland"

WELCOME = """\
From: fakepop <postmaster@fakepop.example>
To: Demo User <demo@fakepop.example>
Subject: Welcome to fakepop
Date: Mon, 03 Jun 2024 09:00:00 +0000
Message-ID: <welcome.20240603090000@fakepop.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hello,

this is a POP3 server made for test suites. You are logged in as "demo".
Try LIST, UIDL, TOP 1 5, RETR 2 and DELE 1 -- deletions only happen in
memory and are forgotten when the server stops.

--\x20
fakepop
"""

# Lines starting with "." are dot-stuffed on the wire (RFC 1939 section 3); a line
# that is just "." must not end the message early.
DOTS = """\
From: Bob Builder <bob@example.org>
To: demo@fakepop.example
Subject: Dot-stuffing check
Date: Tue, 04 Jun 2024 14:30:15 +0200
Message-ID: <dots-4711@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

The next line is a single dot:
.
and this one starts with a dot:
.hidden-file-name
..two dots at the start
The message ends after this line.
"""

# 8-bit UTF-8 body; the Subject is "Grüße aus Zürich \u2013 Café ☕" as an RFC 2047 encoded-word.
UTF8 = """\
From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>
To: demo@fakepop.example
Subject: =?utf-8?b?R3LDvMOfZSBhdXMgWsO8cmljaCDigJMgQ2Fmw6kg4piV?=
Date: Wed, 05 Jun 2024 08:15:42 +0200
Message-ID: <utf8.20240605081542.1@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Zürich!

Der Kaffee im Café am See kostet 4,50 €, günstig für hier. ☕
日本語のテキストもあります。
Ελληνικά, русский, and a little emoji: 📬

Jürgen
"""

ATTACHMENT = """\
From: Carol Reports <reports@example.com>
To: demo@fakepop.example
Subject: Weekly inventory (CSV attached)
Date: Thu, 06 Jun 2024 17:45:00 -0400
Message-ID: <inventory-2024-23@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_fakepop_boundary_42"

This is a multi-part message in MIME format.

--=_fakepop_boundary_42
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hi,

the inventory for week 23 is attached.

Carol

--=_fakepop_boundary_42
Content-Type: text/csv; charset=us-ascii; name="inventory.csv"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="inventory.csv"

c2t1LG5hbWUscXR5DQpGUC0wMDEsV2lkZ2V0LDMNCkZQLTAwMixHYWRnZXQsMTINCg==

--=_fakepop_boundary_42--
"""

ALICE_NOTE = """\
From: White Rabbit <rabbit@example.org>
To: Alice <alice@fakepop.example>
Subject: I'm late
Date: Fri, 07 Jun 2024 12:00:00 +0100
Message-ID: <late.1865@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Oh dear! Oh dear! I shall be too late!
"""


def demo_mailboxes() -> dict[str, MailboxSpec]:
    """A fresh copy of the demo mailboxes, keyed by user, with fixed UIDs."""
    return {
        DEMO_USER: {
            "password": DEMO_PASSWORD,
            "messages": {
                "welcome": WELCOME,
                "dots": DOTS,
                "utf8": UTF8,
                "attachment": ATTACHMENT,
            },
        },
        SECOND_USER: {
            "password": SECOND_PASSWORD,
            "messages": {"late": ALICE_NOTE},
        },
    }
