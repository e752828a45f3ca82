"""Deterministic, seeded generator of realistic Amplitude export rows.

The demo, the end-to-end tests and the benchmarks all need export rows that look like the real
thing (see ``tests/data/amplitude_export_rows.jsonl``): all 55 columns present, ``null`` for
absent values, six-digit fractional UTC times, web rows with the browser in ``os_name``, iOS and
Android rows, server-side rows with ``session_id: -1``, ``$insert_id`` values that are not
UUIDs, a ``uuid`` column that is sometimes null, about 30% anonymous rows, devices shared by two
users, groups as ``{type: key}`` and ``{type: [keys]}``, user properties with ``initial_*`` keys
whose other values change over time, session markers, ``$identify`` rows, and a small share of
bad rows (``BAD_ROW_KINDS``).

Rows of hour ``h`` have their ``server_upload_time`` inside ``h`` (the Export API selects rows by
it); ``event_time`` is a little earlier, sometimes days earlier (apps that were offline). The
same arguments always give the same bytes. Hours follow a daily traffic curve.

    python -m sandbox.generate --rows 50000 --start 20240101T00 --hours 24 --seed 0 --out rows.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import orjson

from sandbox._population import (
    ANON_DEVICE_SHARE, APP_ID, COLUMNS, HOUR_US, SERVER_EVENTS, Population, random_uuid,
)

__all__ = ["BAD_ROW_KINDS", "COLUMNS", "generate_rows", "generate_rows_by_hour", "write_jsonl"]

BAD_ROW_KINDS = ("invalid_json", "missing_event_type", "no_identity", "unparseable_time")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SERVER_SHARE = 0.08  # rows a backend sent through the HTTP API
_PRE_LOGIN_SHARE = 0.10  # rows of identified devices sent before login
_IDENTIFY_SHARE = 0.005
_NULL_UUID_SHARE = 0.3
_BAD_TIMES = ("2024-02-30 25:61:00.000000", "not a time", "", "0000-00-00 00:00:00.000000")
_SECOND_TEXT = tuple(f"{second:02d}." for second in range(60))
_ANONYMOUS_DATA = {"path": "/2/httpapi", "group_first_event": {}, "group_ids": {}}
# Traffic by hour of day (UTC): quiet at night, busy in the afternoon.
_DAILY_SHAPE = (4, 3, 2, 2, 2, 3, 4, 6, 8, 9, 10, 10, 11, 12, 12, 12, 11, 11, 10, 9, 8, 7, 6, 5)


def _hour_start_us(start_hour: str) -> int:
    text = start_hour.replace("-", "") if isinstance(start_hour, str) else ""
    try:
        if len(text) != 11 or text[8] != "T":
            raise ValueError
        moment = datetime.strptime(text, "%Y%m%dT%H").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(
            f"start_hour must look like 20240101T00 or 2024-01-01T00, got {start_hour!r}"
        ) from None
    return int((moment - _EPOCH).total_seconds()) * 1_000_000


def _split(n: int, first_us: int, hours: int) -> list[int]:
    """Split ``n`` rows over the hours along the daily curve (largest remainders)."""
    weights = [_DAILY_SHAPE[(first_us // HOUR_US + h) % 24] for h in range(hours)]
    total = sum(weights)
    raw = [n * weight / total for weight in weights]
    counts = [int(share) for share in raw]
    for index in sorted(range(hours), key=lambda i: (counts[i] - raw[i], i))[: n - sum(counts)]:
        counts[index] += 1
    return counts


class _Clock:
    """Formats epoch microseconds as Amplitude does; strftime is far too slow to call per field."""

    def __init__(self) -> None:
        self._minutes: dict[int, str] = {}

    def __call__(self, us: int) -> str:
        minute, rest = divmod(us, 60_000_000)
        date = self._minutes.get(minute)
        if date is None:
            if len(self._minutes) > 500_000:
                self._minutes.clear()
            date = (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:")
            self._minutes[minute] = date
        second, micro = divmod(rest, 1_000_000)
        return date + _SECOND_TEXT[second] + "%06d" % micro


class _Generator:
    """Builds the population once, then each row as a copy of a device template plus a few
    fields: at 1-3 KB a row, this runs well above 50k rows/s on one core."""

    def __init__(self, n: int, first_us: int, hours: int, seed: int, bad_share: float):
        self.rng = random.Random(seed)
        self.clock = _Clock()
        self.first_us = first_us
        self.bad_share = bad_share
        self.population = Population(self.rng, min(50_000, max(24, n // 20)), first_us,
                                     hours * HOUR_US)
        self.devices = self.population.devices
        self.users = self.population.users
        self.properties = self.population.properties
        self.event_ids = [self.rng.randrange(1, 500) for _ in self.devices]
        self.server_counters: dict[str, int] = {}

    def hours(self, counts: list[int]) -> Iterator[tuple[str, bytes]]:
        rng = self.rng
        random_ = rng.random
        clock, dumps = self.clock, orjson.dumps
        device_row, server_row = self._device_row, self._server_row
        for offset, count in enumerate(counts):
            hour_us = self.first_us + offset * HOUR_US
            label = (_EPOCH + timedelta(microseconds=hour_us)).strftime("%Y%m%dT%H")
            for upload_us in sorted(int(random_() * HOUR_US) for _ in range(count)):
                upload_us += hour_us
                row = server_row(upload_us) if random_() < _SERVER_SHARE else device_row(upload_us)
                row["server_upload_time"] = clock(upload_us)
                row["server_received_time"] = row["client_upload_time"] = clock(
                    upload_us - 2000 - int(random_() * 6000))
                row["processed_time"] = clock(upload_us + 300_000 + int(random_() * 2_500_000))
                row["uuid"] = None if random_() < _NULL_UUID_SHARE else random_uuid(rng)
                if random_() < self.bad_share:
                    yield label, self._spoil(row)
                else:
                    yield label, dumps(row)

    def _device_row(self, upload_us: int) -> dict:
        rng = self.rng
        random_ = rng.random
        index = int(random_() * len(self.devices))
        device = self.devices[index]
        row = device.template.copy()
        roll = random_()
        if roll < 0.7:
            event_us = upload_us - 20_000 - int(roll * 40_000_000)
        elif roll < 0.95 or device.kind == "web":
            event_us = upload_us - 30_000_000 - int(random_() * 7_200_000_000)
        else:  # an app that was offline for up to three days
            event_us = upload_us - int(random_() * 259_200_000_000)
        user = None
        if device.users and random_() >= _PRE_LOGIN_SHARE:
            user = device.users[int(random_() * len(device.users))]
        if user is not None and random_() < _IDENTIFY_SHARE / (1 - ANON_DEVICE_SHARE):
            name, props = "$identify", {}
            row["data_type"] = "identify"
        else:
            name = device.events[int(random_() * len(device.events))]
            pool = self.properties[name]
            props = pool[int(random_() * len(pool))]
        event_id = self.event_ids[index] = self.event_ids[index] + 1
        style = device.insert_style
        if style == "segment":
            row["$insert_id"] = f"ajs-{rng.getrandbits(128):032x}:{rng.getrandbits(40):010x}"
        elif style == "counter":
            row["$insert_id"] = f"{row['device_id']}:{event_id}"
        else:
            row["$insert_id"] = random_uuid(rng, upper=style == "upper_uuid")
        row["event_id"] = event_id
        row["event_type"] = name
        row["event_time"] = row["client_event_time"] = self.clock(event_us)
        row["event_properties"] = props
        offset = device.session_offset_ms  # sessions: 30-minute windows, staggered per device
        row["session_id"] = (event_us // 1000 - offset) // 1_800_000 * 1_800_000 + offset
        if user is None:
            row["user_properties"] = device.initial if device.kind == "web" else {}
            row["data"] = _ANONYMOUS_DATA
            row["groups"] = row["group_properties"] = {}
            return row
        stage = user.stages[0][1]
        for from_us, props_then in user.stages:
            if from_us <= event_us:
                stage = props_then
        row["user_id"] = user.user_id
        row["amplitude_id"] = user.amplitude_id
        row["user_creation_time"] = None if user.created_us is None else self.clock(user.created_us)
        row["user_properties"] = stage
        row["groups"] = user.groups
        row["group_properties"] = user.group_properties
        row["data"] = user.data[random_() < 0.2]
        return row

    def _server_row(self, upload_us: int) -> dict:
        rng = self.rng
        user = self.users[int(rng.random() * len(self.users))] if self.users else None
        name = SERVER_EVENTS[int(rng.random() * len(SERVER_EVENTS))]
        pool = self.properties[name]
        # HTTP API senders often build their own insert ids: "<event name>:<counter>".
        counter = self.server_counters[name] = self.server_counters.get(name, 0) + 1
        time_text = self.clock(upload_us - 100_000 - int(rng.random() * 5_000_000))
        row = dict.fromkeys(COLUMNS)
        row.update({
            "$insert_id": f"{name}:{counter}", "app": APP_ID, "amplitude_id": rng.getrandbits(40),
            "data": _ANONYMOUS_DATA, "data_type": "event", "event_id": rng.getrandbits(30),
            "event_type": name, "event_time": time_text, "client_event_time": time_text,
            "event_properties": pool[int(rng.random() * len(pool))], "group_properties": {},
            "groups": {}, "library": "http/2.0", "plan": {}, "session_id": -1,
            "user_properties": {},
            "device_id": user.server_device_id if user else random_uuid(rng),
            "user_id": user.user_id if user else f"user_{rng.randrange(10**6):06d}",
        })
        return row

    def _spoil(self, row: dict) -> bytes:
        kind = BAD_ROW_KINDS[int(self.rng.random() * len(BAD_ROW_KINDS))]
        if kind == "invalid_json":
            line = orjson.dumps(row)
            return line[: len(line) * 2 // 3]  # a row cut short, as a broken writer leaves it
        if kind == "missing_event_type":
            if self.rng.random() < 0.5:
                del row["event_type"]
            else:
                row["event_type"] = None
        elif kind == "no_identity":
            row["user_id"] = row["device_id"] = None
        else:  # server_upload_time stays valid: the export placed the row by it
            row["event_time"] = row["client_event_time"] = self.rng.choice(_BAD_TIMES)
        return orjson.dumps(row)


def generate_rows_by_hour(n: int, start_hour: str, hours: int, seed: int = 0,
                          bad_share: float = 0.002) -> Iterator[tuple[str, bytes]]:
    """Like ``generate_rows`` but yields ``(hour, line)``, the export hour as ``YYYYMMDDTHH``.

    A sandbox export server needs the hour of every line, including lines that are not JSON.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        raise ValueError(f"hours must be a positive integer, got {hours!r}")
    if not 0.0 <= bad_share <= 1.0:
        raise ValueError(f"bad_share must be between 0 and 1, got {bad_share!r}")
    first_us = _hour_start_us(start_hour)
    return _Generator(n, first_us, hours, seed, bad_share).hours(_split(n, first_us, hours))


def generate_rows(n: int, start_hour: str, hours: int, seed: int = 0,
                  bad_share: float = 0.002) -> Iterator[bytes]:
    """Yield ``n`` NDJSON export lines (no newline) over ``hours`` hours from ``start_hour``.

    Lines come hour by hour, in ``server_upload_time`` order within an hour. About
    ``bad_share`` of them are bad, of the kinds in ``BAD_ROW_KINDS``.
    """
    return (line for _, line in generate_rows_by_hour(n, start_hour, hours, seed, bad_share))


def write_jsonl(path: str | Path, n: int, start_hour: str, hours: int, seed: int = 0,
                bad_share: float = 0.002) -> int:
    """Write the rows of ``generate_rows`` to ``path``, one a line; return how many."""
    rows = generate_rows(n, start_hour, hours, seed, bad_share)  # validates before creating
    written = 0
    with open(path, "wb") as out:
        for line in rows:
            out.write(line + b"\n")
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.generate",
        description="Write realistic Amplitude export rows (NDJSON), the same for the same seed.")
    parser.add_argument("--rows", type=int, required=True, help="number of rows")
    parser.add_argument("--start", required=True, help="first hour (UTC), YYYYMMDDTHH")
    parser.add_argument("--hours", type=int, default=1, help="number of hours (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--bad_share", type=float, default=0.002,
                        help="share of bad rows (default: 0.002)")
    parser.add_argument("--out", required=True, help="output file, or - for standard output")
    args = parser.parse_args(argv)
    try:
        if args.out == "-":
            for line in generate_rows(args.rows, args.start, args.hours, args.seed,
                                      args.bad_share):
                sys.stdout.buffer.write(line + b"\n")
            return 0
        count = write_jsonl(args.out, args.rows, args.start, args.hours, args.seed,
                            args.bad_share)
    except ValueError as error:
        parser.error(str(error))  # one line naming the parameter, exit code 2
    print(f"wrote {count} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
