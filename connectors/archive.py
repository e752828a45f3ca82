"""Streaming readers for Amplitude export files: zips, ``.json.gz`` parts and plain NDJSON.

Every reader works on a local, seekable file and yields one line at a time, so memory stays flat
however large an hour is. Callers validate a file completely (``validate``) before they emit any of
its lines: an export hour is all-or-nothing, and a corrupt part found half-way would otherwise leave
the hour's first lines emitted and the rest missing. ``validate`` can keep what it decompressed
when that fits a budget (``keep_bytes``), so that a small hour's lines come from memory
(``kept_lines``) instead of a second decompression; larger ones are read again from the file.
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
    "kept_lines",
    "kept_size",
    "KEEP_BYTES",
]

ZIP = "zip"
GZIP = "gzip"
PLAIN = "plain"

_CHUNK = 1 << 20
# How much decompressed data one reader keeps from validation at once (see ``validate``), so that
# it need not decompress again: the second decompression was the largest single cost of emitting
# lines. The files source reads one hour at a time and may keep this much of it; the Export API
# source holds up to ``--amplitude_concurrency`` validated hours and keeps up to its share of this
# of each. Larger hours are read again from their files, so memory stays bounded however large.
KEEP_BYTES = 64 << 20
_MAX_OUT = 1 << 20  # decompressed bytes per chunk
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


class _Keeper:
    """Collects decompressed chunks per member while their total stays within ``budget``;
    ``members`` is None once it is exceeded (or with no budget)."""

    def __init__(self, budget: int):
        self.budget = budget
        self.members: list[tuple[str, list[bytes]]] | None = [] if budget > 0 else None

    def drain(self, member: str, chunks: Iterator[bytes]) -> None:
        if self.members is None:
            for _ in chunks:
                pass
            return
        kept: list[bytes] = []
        self.members.append((member, kept))
        for chunk in chunks:
            if self.members is None:
                continue  # over budget: only checking now
            self.budget -= len(chunk)
            if self.budget < 0:
                self.members = None
                continue
            kept.append(chunk)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _gunzip(stream: BinaryIO) -> Iterator[bytes]:
    """Decompressed chunks of a gzip file of one or more members, as ``gzip.GzipFile`` reads it.

    zlib checks each member's CRC-32 and length itself (``wbits=31``), in C; ``GzipFile`` adds a
    Python buffering layer and its own CRC pass, which showed up in profiles of large hours.
    Zero bytes between members are padding, as gzip allows; an empty file has no member.
    """
    inflater = None
    pending = b""
    while True:
        if not pending:
            pending = stream.read(_CHUNK)
            if not pending:
                break
        if inflater is None or inflater.eof:
            if inflater is not None:
                pending = pending.lstrip(b"\0")
                if not pending:
                    continue
            inflater = zlib.decompressobj(31)
        # max_length bounds memory however well a chunk compresses.
        out = inflater.decompress(pending, _MAX_OUT)
        pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        if out:
            yield out
    if inflater is not None and not inflater.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


def validate(path: str, kind: str, members: Sequence[str] | None = None,
             keep_bytes: int = 0, display_name: str | None = None
             ) -> list[tuple[str, list[bytes]]] | None:
    """Read the whole file once, checking every zip and gzip CRC; raise CorruptArchive if damaged.

    ``members`` limits a zip to those members (default: all data members). With ``keep_bytes``,
    returns each member's decompressed chunks, ``[(member, chunks)]`` for ``kept_lines`` (their
    size: ``kept_size``), when all of them fit in that many bytes; otherwise (and for plain
    files, which need no decompression) None. ``display_name`` names a standalone gzip file's
    member (default: the path).
    """
    keeper = _Keeper(keep_bytes if kind in (ZIP, GZIP) else 0)
    try:
        if kind == ZIP:
            with _open_zip(path) as zf:
                for member in members if members is not None else zip_members(zf):
                    try:
                        with zf.open(member) as raw:
                            keeper.drain(member, _gunzip(raw) if file_kind(member) == GZIP
                                         else _chunks(raw))
                    except KeyError as exc:
                        raise CorruptArchive(f"{_name(path)}: no member {member}") from exc
                    except _DAMAGE as exc:
                        raise CorruptArchive(
                            f"{_name(path)}: member {member} is damaged ({exc})") from exc
        elif kind == GZIP:
            with open(path, "rb") as raw:
                keeper.drain(display_name or path, _gunzip(raw))
    except _DAMAGE as exc:
        raise CorruptArchive(f"{_name(path)}: damaged ({exc})") from exc
    return keeper.members


def kept_lines(kept: Sequence[tuple[str, list[bytes]]]) -> Iterator[ArchiveLine]:
    """What ``iter_lines`` yields for the file, from the chunks ``validate`` kept of it."""
    for member, chunks in kept:
        yield from _split(iter(chunks), member)


def kept_size(kept: Sequence[tuple[str, list[bytes]]] | None) -> int:
    """The bytes ``validate`` kept (0 for None)."""
    return sum(len(chunk) for _, chunks in kept or () for chunk in chunks)


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
                    chunks = _gunzip(raw) if file_kind(member) == GZIP else _chunks(raw)
                    yield from _split(chunks, member)
    elif kind == GZIP:
        with open(path, "rb") as raw:
            yield from _split(_gunzip(raw), display_name or path)
    elif kind == PLAIN:
        with open(path, "rb") as plain:
            yield from _split(_chunks(plain), display_name or path)
    else:
        raise ValueError(f"unknown file kind {kind!r}")


def _split(chunks: Iterator[bytes], member: str) -> Iterator[ArchiveLine]:
    # bytes.split over whole chunks runs in C; iterating a file object line by line does not.
    number = 0
    head: list[bytes] = []  # the start of a line that continues in the next chunk
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            head.append(chunk)
            continue
        if head:
            head.append(pieces[0])
            pieces[0] = b"".join(head)
        tail = pieces.pop()
        head = [tail] if tail else []
        for piece in pieces:
            number += 1
            line = piece.rstrip(b"\r")
            if line and not line.isspace():
                yield ArchiveLine(member, number, line)
    line = b"".join(head).rstrip(b"\r")
    if line and not line.isspace():
        yield ArchiveLine(member, number + 1, line)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
