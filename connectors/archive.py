"""Streaming readers for Amplitude export files: zips, ``.json.gz`` parts and plain NDJSON.

Every reader works on a local, seekable file and yields one line at a time, so memory stays flat
however large an hour is. Callers validate a file completely (``validate``) before they emit any of
its lines: an export hour is all-or-nothing, and a corrupt part found half-way would otherwise leave
the hour's first lines emitted and the rest missing.
"""

from __future__ import annotations

import gzip
import re
import zipfile
import zlib
from typing import BinaryIO, Iterator, NamedTuple, Sequence

__all__ = [
    "CorruptArchive",
    "ArchiveLine",
    "file_kind",
    "natural_key",
    "zip_members",
    "validate",
    "iter_lines",
]

ZIP = "zip"
GZIP = "gzip"
PLAIN = "plain"

_CHUNK = 1 << 20
_DIGITS = re.compile(r"(\d+)")
# Errors that mean the bytes are damaged, as opposed to a disk or permission problem.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, zipfile.LargeZipFile)


class CorruptArchive(ValueError):
    """A zip or gzip file is truncated or damaged; the message names the file or member."""


class ArchiveLine(NamedTuple):
    member: str  # zip member name, or the file's own name for a standalone file
    line_number: int  # 1-based, counting blank lines too so numbers match the file
    line: bytes  # without its line ending


def file_kind(name: str) -> str | None:
    """ZIP, GZIP or PLAIN from a file name; None for names that hold no export data."""
    lowered = name.lower()
    if lowered.endswith(".zip"):
        return ZIP
    if lowered.endswith((".json.gz", ".jsonl.gz", ".ndjson.gz")):
        return GZIP
    if lowered.endswith((".json", ".jsonl", ".ndjson")):
        return PLAIN
    return None


def natural_key(name: str) -> tuple:
    """Sort key that orders ``…#2.json.gz`` before ``…#10.json.gz``, as Amplitude numbers parts."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def zip_members(zf: zipfile.ZipFile) -> list[str]:
    """The zip's data members (``.json.gz`` parts, or plain NDJSON) in natural order."""
    names = [info.filename for info in zf.infolist() if not info.is_dir()]
    return sorted((n for n in names if file_kind(n) in (GZIP, PLAIN)), key=natural_key)


def _open_zip(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except _DAMAGE as exc:
        raise CorruptArchive(f"{_name(path)}: not a complete zip ({exc})") from exc


def _drain(stream: BinaryIO) -> None:
    while stream.read(_CHUNK):
        pass


def validate(path: str, kind: str, members: Sequence[str] | None = None) -> None:
    """Read the whole file once, checking every zip and gzip CRC; raise CorruptArchive if damaged.

    ``members`` limits a zip to those members (default: all data members).
    """
    try:
        if kind == ZIP:
            with _open_zip(path) as zf:
                for member in members if members is not None else zip_members(zf):
                    try:
                        with zf.open(member) as raw:
                            _drain(gzip.GzipFile(fileobj=raw) if file_kind(member) == GZIP else raw)
                    except KeyError as exc:
                        raise CorruptArchive(f"{_name(path)}: no member {member}") from exc
                    except _DAMAGE as exc:
                        raise CorruptArchive(
                            f"{_name(path)}: member {member} is damaged ({exc})") from exc
        elif kind == GZIP:
            with gzip.open(path, "rb") as gz:
                _drain(gz)
    except _DAMAGE as exc:
        raise CorruptArchive(f"{_name(path)}: damaged ({exc})") from exc


def iter_lines(path: str, kind: str, members: Sequence[str] | None = None,
               display_name: str | None = None) -> Iterator[ArchiveLine]:
    """Yield the file's non-blank lines, member by member in natural order, gunzipped as a stream.

    Blank lines carry no row (Amplitude never writes them) and are skipped; line numbers still count
    them so a dead letter points at the right line. ``display_name`` names a standalone file's lines
    (default: the path).
    """
    if kind == ZIP:
        with _open_zip(path) as zf:
            for member in members if members is not None else zip_members(zf):
                with zf.open(member) as raw:
                    stream = gzip.GzipFile(fileobj=raw) if file_kind(member) == GZIP else raw
                    yield from _split(stream, member)
    elif kind == GZIP:
        with gzip.open(path, "rb") as gz:
            yield from _split(gz, display_name or path)
    elif kind == PLAIN:
        with open(path, "rb") as plain:
            yield from _split(plain, display_name or path)
    else:
        raise ValueError(f"unknown file kind {kind!r}")


def _split(stream: BinaryIO, member: str) -> Iterator[ArchiveLine]:
    for number, raw in enumerate(stream, start=1):
        line = raw.rstrip(b"\r\n")
        if line and not line.isspace():
            yield ArchiveLine(member, number, line)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
