"""Coverage-guided fuzzing of the sans-IO engine with atheris (libFuzzer). Not run in CI.

    pip install atheris
    python benchmarks/fuzz_atheris.py -max_total_time=180            # seeds made for you
    python benchmarks/fuzz_atheris.py -runs=100000 CORPUS_DIR        # your own corpus

fakepop's modules are instrumented for coverage; every input goes through the same
oracle as tests/test_fuzz.py (``fuzz_once``): fed whole, line by line and cut where the
fuzzer says, it must raise nothing, answer each complete line exactly once until a
closing reply, keep the line buffer bounded, send well-formed replies, give the same
replies however it was cut, and leave the store consistent. A failure is a crash that
libFuzzer reports with the input that caused it. libFuzzer prints ``#N`` (inputs tried)
as it goes and ``Done N runs`` at the end.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["fakepop"]):
    import fakepop  # noqa: F401 - imported here so that it is instrumented

from tests.test_fuzz import CONFIGS, VALID_LINES, fuzz_once


def one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    config = CONFIGS[provider.ConsumeIntInRange(0, len(CONFIGS) - 1)]
    cuts = provider.ConsumeIntListInRange(provider.ConsumeIntInRange(0, 16), 0, 4096)
    fuzz_once(provider.ConsumeBytes(provider.remaining_bytes()), cuts, config)


def _seed_corpus() -> tuple[str, str]:
    # A few valid conversations to start from (after two octets for the config and
    # the number of cuts), and a dictionary of the protocol's words.
    directory = Path(tempfile.mkdtemp(prefix="fakepop-atheris-"))
    corpus = directory / "corpus"
    corpus.mkdir()
    login = b"USER alice\r\nPASS secret\r\n"
    for index, line in enumerate(VALID_LINES):
        stream = login + line + b"\r\nSTAT\r\nDELE 1\r\nLIST\r\nQUIT\r\n"
        (corpus / f"seed-{index:03d}").write_bytes(b"\0\0" + stream)
    words = {word for line in VALID_LINES for word in line.split(b" ") if word}
    words |= {b"\r\n", b"\n", b"\r", b"\0", b" "}
    dictionary = directory / "pop3.dict"
    dictionary.write_text("".join(f'"{_escape(word)}"\n' for word in sorted(words)))
    return str(corpus), str(dictionary)


def _escape(word: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in word)


def main() -> None:
    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        corpus, dictionary = _seed_corpus()
        argv += [f"-dict={dictionary}", corpus]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()  # libFuzzer ends with "Done N runs in T second(s)": N inputs tried


if __name__ == "__main__":
    main()
