"""Benchmarks of fakepop's Trio server against a bare Trio POP3 server (the floor).

Run ``python benchmarks/run.py`` (or ``python -m benchmarks.run``) from the repository
root; see benchmarks/README.md.
"""
