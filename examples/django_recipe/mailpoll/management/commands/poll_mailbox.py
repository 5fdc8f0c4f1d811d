"""``manage.py poll_mailbox``: store the mailbox's new messages, by UIDL.

The mailbox is the POP3_MAILBOX setting: a dict with HOST, PORT, USER and PASSWORD
(and SSL: True for POP3S). Run it from cron or a scheduler. Each message is stored
as it arrives, so a dropped connection loses nothing and the next run stores nothing
twice; with ``--delete`` the server deletes only messages stored here, when the
session ends with QUIT (RFC 1939 §6).
"""

from __future__ import annotations

import argparse
import poplib
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...models import FetchedMessage


class Command(BaseCommand):
    help = "Fetch new mail from the POP3_MAILBOX mailbox and store it."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--delete", action="store_true", help="delete stored messages from the server"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        mailbox = settings.POP3_MAILBOX
        opener = poplib.POP3_SSL if mailbox.get("SSL") else poplib.POP3
        try:
            client = opener(mailbox["HOST"], mailbox["PORT"], timeout=10)
            try:
                client.user(mailbox["USER"])
                client.pass_(mailbox["PASSWORD"])
                stored = self._store_new(client, mailbox["USER"], delete=options["delete"])
                client.quit()
            finally:
                client.close()
        except poplib.error_proto as error:  # an -ERR, or poplib's "-ERR EOF" for a drop
            raise CommandError(f"{mailbox['HOST']} said {error.args[0]!r}") from error
        except (OSError, EOFError) as error:
            raise CommandError(f"lost {mailbox['HOST']}: {error}") from error
        self.stdout.write(f"{stored} new message(s) from {mailbox['USER']}")

    def _store_new(self, client: poplib.POP3, user: str, *, delete: bool) -> int:
        _, listing, _ = client.uidl()
        pairs = (line.decode("ascii").split(" ", 1) for line in listing)
        numbers = {uid: int(number) for number, uid in pairs}
        known = set(
            FetchedMessage.objects.filter(mailbox=user, uid__in=numbers).values_list(
                "uid", flat=True
            )
        )
        stored = 0
        for uid, number in numbers.items():
            if uid not in known:
                _, lines, _ = client.retr(number)
                FetchedMessage.objects.create(
                    mailbox=user, uid=uid, raw=b"\r\n".join(lines) + b"\r\n"
                )
                stored += 1
            if delete:
                client.dele(number)
        return stored
