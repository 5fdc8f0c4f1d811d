"""Django for the recipe's tests, without a project: settings.configure() with the
mailpoll app and an in-memory SQLite database (before the tests import the models),
its tables made once, and each test in a transaction rolled back at its end."""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["examples.django_recipe.mailpoll"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
    )
    django.setup()


@pytest.fixture(scope="session")
def django_tables() -> None:
    # The app has no migrations of its own: your project makes them
    # (manage.py makemigrations mailpoll); here syncdb makes the tables.
    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture
def db(django_tables: None) -> Iterator[None]:
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
