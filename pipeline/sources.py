"""Reading input streams: v1 JSON lines or SNAP Higgs lines, plain or gzip, files or stdin."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pipeline.codec import DeadLetter, decode_higgs_line, decode_json_event
from scoring import Event, Invalid

FORMATS = ("auto", "jsonl", "higgs")
_GZIP_MAGIC = b"\x1f\x8b"


class InputError(Exception):
    """An input file cannot be opened or read at all (bad lines are dead letters instead)."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"cannot read {path}: {detail}")
        self.path = path
        self.detail = detail


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """Opens a path (or ``-`` for stdin) as binary, decompressing gzip by its magic bytes."""
    if path == "-":
        stream: BinaryIO = sys.stdin.buffer
    else:
        try:
            stream = Path(path).open("rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InputError(path, exc.strerror or str(exc)) from exc
    try:
        head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        if head == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=stream) as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield stream
    finally:
        if path != "-":
            stream.close()


def _sniff(first_line: bytes) -> str:
    return "jsonl" if first_line.lstrip().startswith(b"{") else "higgs"


def numbered_lines(path: str, fmt: str = "auto") -> Iterator[tuple[int, str, bytes]]:
    """(line number, format, line without its line break) for each non-blank line of one
    input, in order; ``auto`` is decided by the first line."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}, expected one of {FORMATS}")
    with open_input(path) as stream:
        number = 0
        try:
            for line in stream:
                number += 1
                if not line.strip():
                    continue
                if fmt == "auto":
                    fmt = _sniff(line)
                yield number, fmt, line.rstrip(b"\r\n")
        except (OSError, EOFError) as exc:
            raise InputError(path, f"line {number}: {exc}") from exc


BATCH_BYTES = 1 << 20
"""About how much of an input `numbered_batches` reads at a time."""


def numbered_batches(path: str, fmt: str = "auto") -> Iterator[tuple[int, str, list[bytes]]]:
    """(line number of the first line, format, lines as read) for one input, about a megabyte
    at a time: for the compiled engine, which scores a batch without a Python step per line.
    Blank lines are included (and counted); ``auto`` is decided by the first non-blank line."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}, expected one of {FORMATS}")
    with open_input(path) as stream:
        number = 1
        try:
            while batch := stream.readlines(BATCH_BYTES):
                if fmt == "auto":
                    first = next((line for line in batch if line.strip()), None)
                    if first is not None:
                        fmt = _sniff(first)
                yield number, fmt, batch
                number += len(batch)
        except (OSError, EOFError) as exc:
            raise InputError(path, f"line {number}: {exc}") from exc


def decode_line(raw: bytes, fmt: str, number: int, source: str) -> Event | DeadLetter:
    """One line of `numbered_lines` as an event, or as a dead letter saying why not."""
    decoded = decode_json_event(raw) if fmt == "jsonl" else decode_higgs_line(raw, number)
    if isinstance(decoded, Invalid):
        return DeadLetter(decoded.reason, decoded.detail, raw, source, number)
    return decoded


def source_name(path: str) -> str:
    """How dead letters name an input."""
    return "stdin" if path == "-" else path


def numbered_events(path: str, fmt: str = "auto") -> Iterator[tuple[int, Event | DeadLetter]]:
    """(line number, event or dead letter) for each non-blank line of one input, in order."""
    source = source_name(path)
    for number, line_fmt, raw in numbered_lines(path, fmt):
        yield number, decode_line(raw, line_fmt, number, source)


def read_events(path: str, fmt: str = "auto") -> Iterator[Event | DeadLetter]:
    """Events of one input, in file order; unreadable lines come out as dead letters."""
    return (decoded for _, decoded in numbered_events(path, fmt))
