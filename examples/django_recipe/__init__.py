"""A Django app, ``mailpoll``, whose management command fetches new mail by UIDL."""
