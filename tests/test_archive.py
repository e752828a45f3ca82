"""Streaming readers for export zips, .json.gz parts and plain NDJSON files."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from connectors import archive
from connectors.archive import GZIP, PLAIN, ZIP, ArchiveLine, CorruptArchive


def make_zip(path, members: dict[str, bytes], gzip_members: bool = True):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("app/", b"")  # a directory entry, as zip tools write them
        for name, data in members.items():
            packed = gzip.compress(data) if gzip_members and name.endswith(".gz") else data
            zf.writestr(name, packed)
    return str(path)


def test_natural_key_orders_part_numbers_numerically():
    names = ["a/a_2024-03-05_9#10.json.gz", "a/a_2024-03-05_9#2.json.gz",
             "a/a_2024-03-05_10#0.json.gz", "a/a_2024-03-05_9#0.json.gz"]
    assert sorted(names, key=archive.natural_key) == [
        "a/a_2024-03-05_9#0.json.gz", "a/a_2024-03-05_9#2.json.gz",
        "a/a_2024-03-05_9#10.json.gz", "a/a_2024-03-05_10#0.json.gz"]


@pytest.mark.parametrize("name, kind", [
    ("x.zip", ZIP), ("X.ZIP", ZIP), ("p#1.json.gz", GZIP), ("f.jsonl.gz", GZIP),
    ("f.json", PLAIN), ("f.jsonl", PLAIN), ("f.ndjson", PLAIN), ("f.csv", None),
    ("_SUCCESS", None), ("f.gz", None),
])
def test_file_kind(name, kind):
    assert archive.file_kind(name) == kind


def test_zip_lines_in_natural_member_order_with_provenance(tmp_path):
    path = make_zip(tmp_path / "h.zip", {
        "1/1_2024-03-05_9#10.json.gz": b'{"n":3}\n',
        "1/1_2024-03-05_9#2.json.gz": b'{"n":1}\n{"n":2}\n',
        "README.txt": b"not data",
    })
    assert list(archive.iter_lines(path, ZIP)) == [
        ArchiveLine("1/1_2024-03-05_9#2.json.gz", 1, b'{"n":1}'),
        ArchiveLine("1/1_2024-03-05_9#2.json.gz", 2, b'{"n":2}'),
        ArchiveLine("1/1_2024-03-05_9#10.json.gz", 1, b'{"n":3}'),
    ]
    archive.validate(path, ZIP)


def test_zip_members_can_be_limited(tmp_path):
    path = make_zip(tmp_path / "h.zip", {"a#0.json.gz": b"1\n", "b#0.json.gz": b"2\n"})
    assert [l.line for l in archive.iter_lines(path, ZIP, members=["b#0.json.gz"])] == [b"2"]
    with pytest.raises(CorruptArchive, match="no member"):
        archive.validate(path, ZIP, members=["c#0.json.gz"])


def test_blank_lines_are_skipped_but_counted_and_line_endings_stripped(tmp_path):
    path = tmp_path / "p.json.gz"
    path.write_bytes(gzip.compress(b'{"a":1}\r\n\n   \n{"a":2}'))
    assert list(archive.iter_lines(str(path), GZIP)) == [
        ArchiveLine(str(path), 1, b'{"a":1}'), ArchiveLine(str(path), 4, b'{"a":2}')]
    plain = tmp_path / "p.jsonl"
    plain.write_bytes(b'{"a":1}\n\n{"a":2}\n')
    assert [(l.line_number, l.line) for l in archive.iter_lines(str(plain), PLAIN,
                                                                display_name="shown")] == [
        (1, b'{"a":1}'), (3, b'{"a":2}')]


def test_gzip_member_holding_several_gzip_streams_is_read_whole(tmp_path):
    path = tmp_path / "p.json.gz"
    path.write_bytes(gzip.compress(b"1\n2\n") + gzip.compress(b"3\n"))
    assert [l.line for l in archive.iter_lines(str(path), GZIP)] == [b"1", b"2", b"3"]


def test_truncated_zip_is_corrupt(tmp_path):
    path = make_zip(tmp_path / "h.zip", {"a#0.json.gz": b'{"x":1}\n' * 1000})
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(CorruptArchive, match="h.zip"):
        archive.validate(path, ZIP)


def test_damaged_member_is_corrupt(tmp_path):
    path = make_zip(tmp_path / "h.zip", {"a#0.json.gz": bytes(range(256)) * 400})
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(CorruptArchive, match="a#0.json.gz"):
        archive.validate(path, ZIP)


def test_member_that_is_not_gzip_is_corrupt(tmp_path):
    path = make_zip(tmp_path / "h.zip", {"a#0.json.gz": b"plain text"}, gzip_members=False)
    with pytest.raises(CorruptArchive):
        archive.validate(path, ZIP)


def test_truncated_gzip_file_is_corrupt(tmp_path):
    path = tmp_path / "p.json.gz"
    path.write_bytes(gzip.compress(b'{"x":1}\n' * 1000)[:-20])
    with pytest.raises(CorruptArchive, match="p.json.gz"):
        archive.validate(str(path), GZIP)


def test_not_a_zip_is_corrupt(tmp_path):
    path = tmp_path / "h.zip"
    path.write_bytes(b"<html>Service Unavailable</html>")
    with pytest.raises(CorruptArchive):
        archive.validate(str(path), ZIP)


def test_lines_are_produced_lazily(tmp_path):
    path = make_zip(tmp_path / "h.zip", {"a#0.json.gz": b"x\n" * 100_000})
    lines = archive.iter_lines(path, ZIP)
    assert next(lines) == ArchiveLine("a#0.json.gz", 1, b"x")
    lines.close()


def test_lines_split_across_chunks_match_a_line_by_line_read(tmp_path, monkeypatch):
    # Tiny chunks put line breaks, CRLFs and long lines across chunk boundaries.
    monkeypatch.setattr(archive, "_CHUNK", 7)
    monkeypatch.setattr(archive, "_MAX_OUT", 5)
    data = b'{"a":1}\r\n\n' + b"x" * 40 + b'\n  \n{"b":2}\r\n' + b"y" * 23 + b"\r"
    packed = gzip.compress(data[:30]) + b"\0\0\0" + gzip.compress(data[30:])
    path = make_zip(tmp_path / "h.zip", {"p#0.json.gz": packed}, gzip_members=False)
    expected = [(number, raw.rstrip(b"\r\n"))
                for number, raw in enumerate(io.BytesIO(gzip.decompress(packed)), start=1)
                if raw.strip()]
    archive.validate(path, ZIP)
    assert [(l.line_number, l.line) for l in archive.iter_lines(path, ZIP)] == expected


def test_empty_gzip_file_has_no_lines(tmp_path):
    path = tmp_path / "p.json.gz"
    path.write_bytes(b"")
    archive.validate(str(path), GZIP)
    assert list(archive.iter_lines(str(path), GZIP)) == []


def test_gzip_member_damaged_before_zipping_is_corrupt(tmp_path):
    # The zip's own CRC matches these bytes: only the gzip trailer tells that the data is wrong.
    packed = bytearray(gzip.compress(b'{"x":1}\n' * 100))
    packed[-8] ^= 0xFF  # the gzip CRC-32
    path = make_zip(tmp_path / "h.zip", {"a#0.json.gz": bytes(packed)}, gzip_members=False)
    with pytest.raises(CorruptArchive, match="a#0.json.gz"):
        archive.validate(path, ZIP)


def test_garbage_after_the_last_gzip_stream_is_corrupt(tmp_path):
    path = tmp_path / "p.json.gz"
    path.write_bytes(gzip.compress(b"1\n") + b"trailing junk")
    with pytest.raises(CorruptArchive, match="p.json.gz"):
        archive.validate(str(path), GZIP)


def _large_member(rows: int) -> bytes:
    # Lines that straddle the 1 MiB decompression chunks, CRLF endings, blank lines and no final
    # newline: what iter_lines handles chunk by chunk, kept_lines must give from one buffer.
    lines = [b'{"n":%d,"pad":"%s"}' % (n, b"x" * (n % 700)) for n in range(rows)]
    return b"\r\n".join(lines[:rows // 2]) + b"\n\n  \n" + b"\n".join(lines[rows // 2:])


def test_validate_keeps_what_fits_and_kept_lines_equal_the_second_read(tmp_path):
    path = make_zip(tmp_path / "h.zip", {
        "1/1_2024-03-05_9#2.json.gz": _large_member(6000),
        "1/1_2024-03-05_9#10.json.gz": b'{"n":3}\n',
        "1/1_2024-03-05_9#3.json": b'{"plain":true}\n',
    })
    kept = archive.validate(path, ZIP, keep_bytes=64 << 20)
    assert kept is not None and len(kept) == 3
    assert list(archive.kept_lines(kept)) == list(archive.iter_lines(path, ZIP))
    # One byte short of everything, or no budget: nothing is kept, the file is still checked.
    total = archive.kept_size(kept)
    assert archive.validate(path, ZIP, keep_bytes=total - 1) is None
    assert archive.validate(path, ZIP, keep_bytes=total) is not None
    assert archive.validate(path, ZIP) is None


def test_a_kept_gzip_file_is_named_as_iter_lines_names_it(tmp_path):
    path = tmp_path / "p.json.gz"
    path.write_bytes(gzip.compress(_large_member(3000)) + gzip.compress(b"last\n"))
    kept = archive.validate(str(path), GZIP, keep_bytes=64 << 20, display_name="shown")
    assert list(archive.kept_lines(kept)) == list(
        archive.iter_lines(str(path), GZIP, display_name="shown"))


def test_a_damaged_member_raises_even_when_the_budget_is_spent(tmp_path):
    good = gzip.compress(_large_member(3000))
    path = make_zip(tmp_path / "h.zip", {"a#0.json.gz": b"1\n", "b#1.json.gz": b"2\n"},
                    gzip_members=False)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a#0.json.gz", good)
        zf.writestr("b#1.json.gz", good[:-12])  # cut before its CRC and length
    with pytest.raises(CorruptArchive, match="b#1.json.gz"):
        archive.validate(path, ZIP, keep_bytes=10)
