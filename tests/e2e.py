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
from sandbox.posthog import PostHogCaptureServer
from transforms.settings import TranslationSettings
from transforms.translate import identify_uuid, translate_line

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

    def expected(self, settings: TranslationSettings | None = None) -> dict[str, dict]:
        """uuid -> event for every row that migrates, plus the job's $identify events.

        Pairs are found from the raw rows, independently of the pipeline's facts.
        """
        settings = settings or TranslationSettings.from_flags()
        events, pairs = {}, {}
        for _, line in self.rows:
            result = translate_line(line, settings)
            if result.event is None:
                continue
            events[result.event["uuid"]] = result.event
            row = orjson.loads(line)
            user, device = (row.get("user_id") or "").strip(), row.get("device_id")
            if user and device:
                ts = result.event["timestamp"]
                pairs[(user, device)] = min(ts, pairs.get((user, device), ts))
        for (user, device), ts in pairs.items():
            events[identify_uuid(user, device)] = {"event": "$identify", "distinct_id": user,
                                                   "timestamp": ts}
        return events


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
