"""A fetched message, kept under its mailbox and UID (RFC 1939 §7: a UID names the
same message in every session, so it tells new mail from mail already stored)."""

from __future__ import annotations

from django.db import models


class FetchedMessage(models.Model):
    mailbox = models.CharField(max_length=255)
    uid = models.CharField(max_length=70)  # RFC 1939 §7: 1 to 70 characters
    raw = models.BinaryField()
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["mailbox", "uid"], name="one_row_per_message"),
        )

    def __str__(self) -> str:
        return f"{self.mailbox}/{self.uid}"
