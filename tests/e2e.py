"""Helpers for end-to-end tests: the real CLI in a subprocess against both sandbox servers."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass

import orjson

from connectors.hours import hour_range, hour_start
from sandbox.amplitude import AmplitudeExportServer
from sandbox.generate import generate_rows_by_hour
from sandbox.persons import PersonModel, interleave
from sandbox.posthog import PostHogCaptureServer
from transforms.settings import TranslationSettings
from pipeline.snapshots import group_identify_uuid, person_snapshot_uuid
from transforms.posthog_rules import (captured_distinct_id, is_distinct_id_unmergeable,
                                      person_updates)
from transforms.translate import identify_uuid, row_timestamp, translate_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"AMPLITUDE_API_KEY": "e2e-amplitude-key-4711",
        "AMPLITUDE_SECRET_KEY": "e2e-amplitude-secret-4712",
        "POSTHOG_API_KEY": "phc_e2e_project_key_4713"}


@dataclass
class Export:
    start: str
    end: str
    rows: list[tuple[str, bytes]]  # (hour, line)

    @property
    def hours(self) -> list[str]:
        return hour_range(self.start, self.end)

    def expected(self, settings: TranslationSettings | None = None, *,
                 identify_mode: str = "pairs", group_identify: bool = True,
                 person_snapshot: bool = True) -> dict[str, dict]:
        """uuid -> event for every row that migrates, plus the job's generated events.

        Also sets ``persons``: ``[(distinct_ids as PostHog stores them, properties)]`` of every
        person whose events carried properties, as Amplitude had them (a user with the devices
        it was first seen on, each property's latest value, each first-touch value's earliest).

        Pairs, groups and persons are found from the raw rows, independently of the pipeline's
        facts; ``identify_mode`` is ``pairs`` or ``off`` (per-file events depend on how the
        source split the hours into files).
        """
        if identify_mode not in ("pairs", "off"):
            raise ValueError(f"identify_mode: {identify_mode!r} is not computed here")
        settings = settings or TranslationSettings.from_flags()
        events, pairs, groups, stamps = {}, {}, {}, {}
        latest, earliest = {}, {}  # distinct_id -> {property: (timestamp, uuid, value)}
        for _, line in self.rows:
            result = translate_line(line, settings)
            row = orjson.loads(line) if result.row is not None else None
            if result.reason == "group_identify" and row.get("groups"):
                _add_groups(groups, row, row_timestamp(row), row.get("uuid"),
                            row.get("user_id") or row.get("device_id"))
            if result.event is None:
                continue
            event = result.event
            events[event["uuid"]] = event
            ts, distinct_id = event["timestamp"], event["distinct_id"]
            user, device = (row.get("user_id") or "").strip(), row.get("device_id")
            if user and device:
                pairs[(user, device)] = min(ts, pairs.get((user, device), ts))
            if row.get("groups"):
                _add_groups(groups, row, ts, event["uuid"], distinct_id)
            props = event["properties"]
            person, once = person_updates(props)
            if not isinstance(props.get("$set"), dict):
                person = {**person, **(row.get("user_properties") or {})}
            stamp = (ts, event["uuid"])
            for table, values, pick in ((latest, person, max), (earliest, once, min)):
                mine = table.setdefault(distinct_id, {})
                for key, value in values.items():
                    mine[key] = pick(mine.get(key, (*stamp, value)), (*stamp, value), key=_stamp)
            if person or once:
                stamps[distinct_id] = max(stamps.get(distinct_id, stamp), stamp)
        owners = {}  # device -> (timestamp, user): its first user PostHog would merge it with
        for (user, device), ts in pairs.items():
            stored_user, stored_device = captured_distinct_id(user), captured_distinct_id(device)
            if (stored_user == stored_device or is_distinct_id_unmergeable(stored_user)
                    or is_distinct_id_unmergeable(stored_device)):
                continue
            owners[device] = min(owners.get(device, (ts, user)), (ts, user))
        if identify_mode == "pairs":
            for device, (ts, user) in owners.items():
                events[identify_uuid(user, device)] = {
                    "event": "$identify", "distinct_id": user, "timestamp": ts,
                    "properties": {"$anon_distinct_id": captured_distinct_id(device)}}
        if group_identify:
            for (kind, key), (_, ts, source, distinct_id, props) in groups.items():
                if len(key) > 400:
                    continue
                events[group_identify_uuid(kind, key, source)] = {
                    "event": "$groupidentify", "distinct_id": distinct_id, "timestamp": ts,
                    "properties": {"$group_type": kind, "$group_key": key, "$group_set": props}}
        people: dict[str, list[str]] = {}
        for distinct_id in stamps:
            owner = owners.get(distinct_id) if identify_mode == "pairs" else None
            people.setdefault(owner[1] if owner else distinct_id, []).append(distinct_id)
        self.persons = []
        for person, members in people.items():
            values = {}
            for table, pick in ((latest, max), (earliest, min)):
                best = {}
                for member in members:
                    for key, kept in table.get(member, {}).items():
                        best[key] = pick(best.get(key, kept), kept, key=_stamp)
                values.update({key: kept[2] for key, kept in best.items()})
            owned = [d for d, (_, user) in owners.items() if user == person]
            ids = {captured_distinct_id(i) for i in (person, *members, *owned)}
            self.persons.append((ids, values))
            ts, source = max(stamps[m] for m in members)
            for member in members if person_snapshot else ():
                events[person_snapshot_uuid(member, source)] = {
                    "event": "$set", "distinct_id": member, "timestamp": ts,
                    "properties": {"$set": values}}
        return events


def _stamp(kept: tuple) -> tuple:
    return kept[:2]


def _rank(candidate: tuple) -> tuple:
    return candidate[:3]


def _add_groups(groups: dict, row: dict, ts: str, source: str, distinct_id: str) -> None:
    """The latest (by time, then uuid) event of each group, preferring events with properties."""
    properties = row.get("group_properties") or {}
    for kind, keys in row["groups"].items():
        for key in keys if isinstance(keys, list) else [keys]:
            key = str(key)
            props = properties.get(kind, {}).get(key)
            if props is None:
                props = properties.get("$set", {})
            candidate = (bool(props), ts, source, distinct_id, props)
            groups[(kind, key)] = max(groups.get((kind, key), candidate), candidate, key=_rank)


def assert_persons_as_amplitude_had_them(events: list[dict], expected_persons, seeds=range(6)):
    """Feeds ``events`` (as PostHog received them) to a model of PostHog's person processing, in
    several orders it may process them in, and checks every expected person each time."""
    for seed in seeds:
        model = PersonModel()
        for event in interleave(events, seed):
            model.ingest(event)
        for distinct_ids, properties in expected_persons:
            found = model.person(next(iter(distinct_ids)))
            assert found is not None and found.distinct_ids == distinct_ids, (seed, distinct_ids)
            assert found.properties == properties, (seed, distinct_ids)


def make_export(rows: int, start: str, hours: int, seed: int = 1) -> Export:
    end = (hour_start(start) + dt.timedelta(hours=hours - 1)).strftime("%Y%m%dT%H")
    return Export(start, end, list(generate_rows_by_hour(rows, start, hours, seed=seed)))


def servers(export: Export, **posthog_kwargs):
    amplitude = AmplitudeExportServer(export.rows, api_key=KEYS["AMPLITUDE_API_KEY"],
                                      secret_key=KEYS["AMPLITUDE_SECRET_KEY"], part_rows=200)
    posthog = PostHogCaptureServer(KEYS["POSTHOG_API_KEY"], **posthog_kwargs)
    return amplitude, posthog


def cli_args(export: Export, amplitude, posthog, work_dir, *extra: str) -> list[str]:
    return ["--start", export.start, "--end", export.end, "--work_dir", str(work_dir),
            "--amplitude_url", amplitude.url, "--posthog_host", posthog.url, *extra]


def cli(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """Starts ``python -m pipeline`` with the sandbox keys in its environment."""
    environ = {**os.environ, **KEYS, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def run_cli(*args: str, env: dict | None = None, timeout: float = 240):
    proc = cli(*args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def report(work_dir) -> dict:
    return orjson.loads((work_dir / "report.json").read_bytes())


def assert_reconciled(rep: dict) -> None:
    accounted = (rep["events_sent"] + sum(rep["rows_skipped"].values())
                 + sum(rep["rows_dead_lettered"].values()))
    assert rep["reconciled"] and rep["rows_read"] == accounted, rep
