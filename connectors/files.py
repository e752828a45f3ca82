"""Amplitude export files as a source (``--source files``), and file helpers the pipeline shares.

Paths go through Beam's ``FileSystems``, so local paths, ``gs://`` and ``s3://`` behave alike.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections import defaultdict
import zipfile
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from connectors import archive
from connectors.emit import emit_hour
from connectors.errors import MigrationAbort
from connectors.hours import parse_hour
from transforms.records import EMPTY, FAILED, HourMarker, LineChunk

__all__ = [
    "ReadFromAmplitudeFiles",
    "configure_gcs_emulator",
    "exists",
    "files_by_hour",
    "hour_from_name",
    "read_bytes",
    "read_hour_files",
    "remove",
    "use_beam_file_options",
    "write_atomically",
]

_LOG = logging.getLogger(__name__)
_RAW = CompressionTypes.UNCOMPRESSED  # never let FileSystems guess from a ".gz" suffix
_CHUNK = 1 << 20
_METRICS = "amplitude"

# Amplitude names its parts <app>_<YYYY-MM-DD>_<H>#<n>.json.gz with the hour not zero-padded.
_PART_NAME = re.compile(r"_(\d{4})-(\d{2})-(\d{2})_(\d{1,2})#\d+\.[A-Za-z.]+$")
# --preserve_sources writes <YYYYMMDDTHH>.zip; dashed dates are accepted for hand-named files.
_HOUR_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})T(\d{2})(?!\d)")


def configure_gcs_emulator() -> bool:
    """Make this process talk to a GCS emulator anonymously when STORAGE_EMULATOR_HOST is set.

    Without it Beam first looks for Google credentials and, finding none, retries for ~20 s in
    every process before going anonymous. Call it in DoFn.setup() and before the first gs:// use.
    Returns whether the emulator is configured.
    """
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return False
    from apache_beam.internal.gcp import auth  # pylint: disable=import-outside-toplevel

    with auth._Credentials._credentials_lock:  # pylint: disable=protected-access
        auth._Credentials._credentials_init = True  # pylint: disable=protected-access
        auth._Credentials._credentials = None  # pylint: disable=protected-access
    return True


def use_beam_file_options(beam_args: list[str]) -> None:
    """Give Beam's file systems the run's own options (``--s3_endpoint_url``, ``--s3_region_name``
    …) in this process too, not only in the pipeline: the launcher reads and writes the work_dir
    and lists the source before any pipeline exists. Without options Beam's S3 file system
    cannot be created at all; with empty ones it takes AWS's standard chain."""
    from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=C0415

    FileSystems.set_options(PipelineOptions(beam_args))


def _is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def write_atomically(path: str, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` (bytes or an iterable of chunks) so ``path`` appears complete or not at all.

    The bytes go to a temporary name beside ``path`` and are renamed into place once fully
    written; a failure part-way leaves no file at ``path`` (and any older file there untouched).
    """
    chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    if _is_local(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            _remove_quietly(tmp)
            raise
        return
    _prepare(path)
    # The bytes are spooled locally first: a GCS writer that is dropped part-way is still
    # finalised when it is garbage-collected, so it must never see a failing source. The upload
    # goes to a temporary object; Beam's rename (copy, then delete) makes the target appear whole.
    with tempfile.TemporaryFile() as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        try:
            with FileSystems.create(tmp, compression_type=_RAW) as out:
                shutil.copyfileobj(spool, out, _CHUNK)
            FileSystems.rename([tmp], [path])
        except BaseException:
            _remove_quietly(tmp)
            raise


def remove(path: str) -> None:
    """Delete ``path`` (local or remote) if it exists."""
    if _is_local(path):
        try:
            os.remove(path[len("file://"):] if path.startswith("file://") else path)
        except FileNotFoundError:
            pass
    elif exists(path):
        FileSystems.delete([path])


def _remove_quietly(path: str) -> None:
    try:
        if _is_local(path):
            os.remove(path)
        elif FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # pylint: disable=broad-except
        pass  # best effort: the original error matters more than a leftover temporary file


def read_bytes(path: str) -> bytes:
    """The whole content of ``path`` (local or gs://), read without decompression."""
    _prepare(path)
    with FileSystems.open(path, compression_type=_RAW) as handle:
        return handle.read()


def exists(path: str) -> bool:
    _prepare(path)
    return FileSystems.exists(path)


def _prepare(path: str) -> None:
    if not _is_local(path):
        configure_gcs_emulator()
        # A process that never set Beam's file options (a test, a worker) still reaches S3
        # through AWS's standard chain.
        if FileSystems._pipeline_options is None:  # pylint: disable=protected-access
            use_beam_file_options([])


@contextmanager
def _local_copy(path: str, tmp_dir: str) -> Iterator[str]:
    """A local path with ``path``'s bytes: the path itself, or a streamed copy of a remote file."""
    if _is_local(path):
        yield path[len("file://"):] if path.startswith("file://") else path
        return
    local = os.path.join(tmp_dir, uuid.uuid4().hex + "_" + path.rsplit("/", 1)[-1])
    with FileSystems.open(path, compression_type=_RAW) as src, open(local, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
    try:
        yield local
    finally:
        _remove_quietly(local)


def hour_from_name(name: str) -> str | None:
    """The export hour (YYYYMMDDTHH) a file or zip member name carries, or None."""
    base = name.rsplit("/", 1)[-1]
    part = _PART_NAME.search(base)
    if part:
        year, month, day, hour = part.groups()
        if int(hour) < 24:
            return f"{year}{month}{day}T{int(hour):02d}"
    named = _HOUR_NAME.search(base)
    if named and int(named.group(4)) < 24:
        return "{}{}{}T{}".format(*named.groups())
    return None


class _Part(NamedTuple):
    path: str
    kind: str
    member: str | None  # None: every data member of the zip
    size: int


def files_by_hour(pattern: str, hours: Sequence[str] | None = None
                  ) -> tuple[list[tuple[str, tuple[_Part, ...]]], list[str]]:
    """The files ``pattern`` matches, grouped by the hour in their names, and those skipped.

    Returns ``[(hour, parts)]`` for each hour of ``hours`` (``()`` when no file has it), or for
    every hour found when ``hours`` is None, and the matched paths that are not export files.
    Raises ``MigrationAbort`` when nothing matches or a data file's name carries no hour.
    """
    matched = FileSystems.match([pattern])[0].metadata_list
    if not matched:
        raise MigrationAbort(f"--source_path {pattern} matched no files", flag="--source_path")
    groups: dict[str, list[_Part]] = defaultdict(list)
    unnamed, skipped = [], []
    for meta in matched:
        path, kind = meta.path, archive.file_kind(meta.path)
        hour = hour_from_name(path)
        if kind is None:
            skipped.append(path)
        elif hour:
            groups[hour].append(_Part(path, kind, None, meta.size_in_bytes))
        elif kind == archive.ZIP:
            # A zip saved from the API under another name: each member's name carries its hour.
            for member in _list_zip(path):
                member_hour = hour_from_name(member)
                if member_hour:
                    groups[member_hour].append(_Part(path, kind, member, meta.size_in_bytes))
                else:
                    unnamed.append(f"{path} (member {member})")
        else:
            unnamed.append(path)
    if unnamed:
        raise MigrationAbort(
            f"--source_path: {len(unnamed)} file(s) have no hour in their name, e.g. "
            f"{', '.join(unnamed[:3])}. Name them as Amplitude does "
            "(<app>_<YYYY-MM-DD>_<H>#<n>.json.gz) or <YYYYMMDDTHH>.<ext>.",
            flag="--source_path")
    wanted = sorted(groups) if hours is None else hours
    return [(hour, tuple(sorted(groups.get(hour, ()),
                                key=lambda p: (archive.natural_key(p.path),
                                               archive.natural_key(p.member or "")))))
            for hour in wanted], skipped


class _GroupFilesByHour(beam.DoFn):
    """pattern -> (hour, tuple[_Part, ...]) for each wanted hour; hours without files get ()."""

    def __init__(self, hours: Sequence[str] | None):
        self._hours = tuple(hours) if hours is not None else None
        self._skipped = Metrics.counter(_METRICS, "files_skipped")

    def setup(self):
        configure_gcs_emulator()

    def process(self, pattern: str):
        grouped, skipped = files_by_hour(pattern, self._hours)
        if skipped:
            self._skipped.inc(len(skipped))
            _LOG.warning("--source_path: skipped %d file(s) that are not .zip, .json(l) or "
                         ".json(l).gz, e.g. %s", len(skipped), ", ".join(skipped[:3]))
        yield from grouped


def _list_zip(path: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp, _local_copy(path, tmp) as local:
        try:
            with zipfile.ZipFile(local) as zf:
                return archive.zip_members(zf)
        except zipfile.BadZipFile as exc:
            raise MigrationAbort(f"--source_path: {path} is not a readable zip ({exc})",
                                 flag="--source_path") from exc


def read_hour_files(hour: str, parts: Sequence[_Part],
                    count: Callable[[str, int], None] = lambda name, n: None
                    ) -> Iterator[LineChunk | HourMarker]:
    """An hour's LineChunks in natural file order, then one HourMarker (see
    ``ReadFromAmplitudeFiles``). ``count(name, n)`` hears ``hours_empty``, ``hours_failed``,
    ``export_bytes``, ``rows_read`` and ``hours_fetched``."""
    if not parts:
        count("hours_empty", 1)
        yield HourMarker(hour, EMPTY, "no file for this hour matched --source_path",
                         {"rows_read": 0})
        return
    # One entry per file, in order; a zip listed member by member keeps only those members.
    files: dict[str, tuple[str, list[str] | None, int]] = {}
    for part in parts:
        kind, members, size = files.get(part.path, (part.kind, [], part.size))
        if part.member is None or members is None:
            members = None
        else:
            members.append(part.member)
        files[part.path] = (kind, members, size)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        local, kept = {}, {}
        budget = archive.KEEP_BYTES  # decompressed bytes kept from validation, for the hour
        try:
            for path, (kind, members, size) in files.items():
                local[path] = stack.enter_context(_local_copy(path, tmp))
                # Checked before any line goes out so the hour is emitted whole or not at all.
                kept[path] = archive.validate(local[path], kind, members, keep_bytes=budget,
                                              display_name=path)
                budget -= archive.kept_size(kept[path])
                count("export_bytes", size)
        except archive.CorruptArchive as exc:
            count("hours_failed", 1)
            _LOG.warning("Hour %s failed: %s", hour, exc)
            yield HourMarker(hour, FAILED, f"unreadable file: {exc}", {"rows_read": 0})
            return
        count("hours_fetched", 1)
        yield from emit_hour(hour, itertools.chain.from_iterable(
            archive.kept_lines(kept[path]) if kept[path] is not None
            else archive.iter_lines(local[path], kind, members, display_name=path)
            for path, (kind, members, _) in files.items()),
            lambda rows: count("rows_read", rows))


class _ReadHourFiles(beam.DoFn):
    """(hour, parts) -> the hour's LineChunks in natural file order, then one HourMarker."""

    def __init__(self):
        self._counters = {name: Metrics.counter(_METRICS, name) for name in (
            "hours_fetched", "hours_empty", "hours_failed", "export_bytes", "rows_read")}

    def setup(self):
        configure_gcs_emulator()

    def _count(self, name: str, n: int) -> None:
        self._counters[name].inc(n)

    def process(self, element):
        hour, parts = element
        yield from read_hour_files(hour, parts, self._count)


class ReadFromAmplitudeFiles(beam.PTransform):
    """Read Amplitude export files: ``PBegin -> PCollection[LineChunk | HourMarker]``.

    ``pattern`` is a glob (local, gs:// or s3://) matching export zips (as the Export API returns
    them, or ``<YYYYMMDDTHH>.zip`` as ``--preserve_sources`` keeps them), ``.json.gz`` parts (as
    Amplitude's S3/GCS export writes them) and plain ``.json``/``.jsonl`` files. A file's hour comes from its
    name (``<app>_<YYYY-MM-DD>_<H>#<n>.…`` or one containing ``YYYYMMDDTHH``); a zip whose name has
    none is split by the hours in its members' names. A data file with no hour in its name stops
    the run with an error naming it (a file cannot be assigned to an hour by guessing); other files
    the glob matches (manifests, ``_SUCCESS``) are skipped with one warning.

    For each hour, the lines of its files in natural name order in ``LineChunk``s (see
    ``connectors.emit``), then one ``HourMarker``: DONE, EMPTY when ``hours`` names an hour no
    file has, FAILED when a file is damaged (no line of that hour is emitted then). ``hours=None`` reads every hour found.
    """

    def __init__(self, pattern: str, hours: Sequence[str] | None = None):
        super().__init__()
        if not pattern or not isinstance(pattern, str):
            raise ValueError("--source_path must be a file pattern (local path or gs://)")
        self._pattern = pattern
        self._hours = None if hours is None else sorted({parse_hour(h) for h in hours})

    def expand(self, pbegin):
        return (
            pbegin
            | "Pattern" >> beam.Create([self._pattern])
            | "GroupByHour" >> beam.ParDo(_GroupFilesByHour(self._hours))
            # Hours go to different workers; an hour's lines and marker stay in one process() call.
            | "SpreadHours" >> beam.Reshuffle()
            | "ReadHours" >> beam.ParDo(_ReadHourFiles()))
