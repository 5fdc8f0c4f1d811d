"""Polls a POP3 mailbox into the database: ``python manage.py poll_mailbox``."""
