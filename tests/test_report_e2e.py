"""The report of a real CLI run: report.json against what happened, report.html in Chromium,
``status`` pointing at it; and the switches that shape what a run prints (-q, --version)."""

from __future__ import annotations

import collections
import re
from html.parser import HTMLParser

import orjson
import pytest

from sandbox.amplitude import Fault
from tests.e2e import cli_args, make_export, run_cli, servers
from tests.test_report_html import _parsed_dom, chromium  # noqa: F401 - chromium is a fixture
from transforms.settings import TranslationSettings
from transforms.translate import translate_line

pytestmark = pytest.mark.timeout(300)

EVENTS_COLOR = "#4f46e5"  # the events series of the charts


class _Charts(HTMLParser):
    """Per chart (by aria-label): its bars as (fill, height); plus the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, list[tuple[str, float]]] = {}
        self.tables: list[str] = []
        self.text: list[str] = []
        self._chart: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "svg":
            self._chart = attrs.get("aria-label")
            self.charts[self._chart] = []
        elif tag == "rect" and self._chart and "height" in attrs and "fill" in attrs:
            self.charts[self._chart].append((attrs["fill"], float(attrs["height"])))
        elif tag == "table":
            self.tables.append(attrs.get("class", ""))

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None

    def handle_data(self, data):
        self.text.append(data)


def _browser_dom(binary, tmp_path, page) -> _Charts:
    return _parsed_dom(binary, tmp_path / "profile", page, _Charts())


def _event_bars(dom: _Charts, title: str) -> list[float]:
    return [height for fill, height in dom.charts[title] if fill == EVENTS_COLOR]


def test_report_of_a_run_with_a_failed_hour_and_dead_letters(chromium, tmp_path):  # noqa: F811
    export = make_export(rows=500, start="20240408T00", hours=3, seed=41)
    failed = export.hours[1]
    good = orjson.loads(export.rows[0][1])
    export.rows += [(export.hours[0], b'{"event_type": "cut short'),
                    (export.hours[2], orjson.dumps({**good, "event_type": None})),
                    (export.hours[2], b"not json either")]
    amplitude, posthog = servers(export)
    amplitude.add_faults(Fault(status=400), hour=failed)  # over the export limit: fails at once
    work_dir = tmp_path / "job"
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, work_dir))
        assert code == 3, err[-3000:]
        code, status_out, err = run_cli("status", "--work_dir", str(work_dir))
        assert code == 0, err
    rep = orjson.loads((work_dir / "report.json").read_bytes())

    assert rep["failed_hours"] == [{"hour": failed, "detail": rep["failed_hours"][0]["detail"]}]
    assert "4 GB" in rep["failed_hours"][0]["detail"]
    assert [h["hour"] for h in rep["per_hour"]] == export.hours
    assert [h["rows_read"] == 0 for h in rep["per_hour"]] == [h == failed for h in export.hours]
    for name in ("rows_read", "events_sent", "events_translated"):
        assert sum(h[name] for h in rep["per_hour"]) == rep[name] > 0
    assert sum(d["events"] for d in rep["per_day"]) == rep["events_translated"]

    # Top event names, against an independent translation of the rows of the hours that ran.
    settings = TranslationSettings.from_flags()
    names = collections.Counter(
        result.event["event"] for hour, line in export.rows if hour != failed
        for result in [translate_line(line, settings)] if result.event is not None)
    assert [(e["event"], e["count"]) for e in rep["top_events"]] == sorted(
        names.items(), key=lambda kv: (-kv[1], kv[0]))[:len(rep["top_events"])]

    # Dead-letter examples are provenances of real dead letters, and nothing else.
    letters = {(d["reason"], d["hour"], d["file"], d["line_number"])
               for path in (work_dir / "dead_letter").glob("*.jsonl")
               for d in map(orjson.loads, path.read_bytes().splitlines())}
    assert rep["rows_dead_lettered"] and set(rep["dead_letter_examples"]) == set(
        rep["rows_dead_lettered"])
    for reason, examples in rep["dead_letter_examples"].items():
        assert examples
        for example in examples:
            assert set(example) == {"hour", "file", "line_number"}
            assert (reason, example["hour"], example["file"], example["line_number"]) in letters

    page = work_dir / "report.html"
    assert f"Report: {work_dir / 'report.json'} and {page}" in status_out
    dom = _browser_dom(chromium, tmp_path, page)
    per_hour = "Rows read and events sent per export hour"
    assert list(dom.charts) == ["Rows read and events sent per day, by event time", per_hour]
    assert len([h for h in _event_bars(dom, per_hour) if h > 0]) == 2  # the two hours that ran
    assert "reconciliation" in dom.tables
    text = " ".join(dom.text)
    assert "✓ Every row read is accounted for." in text
    assert f"failed hour {failed[:4]}-{failed[4:6]}-{failed[6:8]} {failed[9:]}h" in text
    assert f"python -m pipeline --work_dir {work_dir}" in text
    for reason in rep["rows_dead_lettered"]:
        assert reason in text
    assert '"posthog_api_key": "POSTHOG_API_KEY"' in text  # where the keys come from, not them


def test_dry_run_report_charts_what_would_be_sent(chromium, tmp_path):  # noqa: F811
    export = make_export(rows=300, start="20240409T00", hours=2, seed=42)
    amplitude, posthog = servers(export)
    work_dir = tmp_path / "job"
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, work_dir, "--dry_run",
                                           "-q"))
        assert code == 0, err[-3000:]
    state = work_dir / "dry_run"
    # Quiet: no log line, only the final summary and where the report is.
    assert err == ""
    lines = out.strip().splitlines()
    assert lines[0].startswith("Job ") and "Rows read" in lines[1]
    assert lines[-1] == f"Report: {state / 'report.json'} and {state / 'report.html'}"
    rep = orjson.loads((state / "report.json").read_bytes())
    assert rep["dry_run"] and rep["events_sent"] == 0
    assert [h["events_translated"] for h in rep["per_hour"]] != [0, 0]
    assert sum(h["events_translated"] for h in rep["per_hour"]) == rep["events_translated"]

    dom = _browser_dom(chromium, tmp_path, state / "report.html")
    per_hour = "Rows read and events translated per export hour"
    assert list(dom.charts) == ["Rows read and events translated per day, by event time",
                                per_hour]
    assert len([h for h in _event_bars(dom, per_hour) if h > 0]) == 2
    assert "dry run: nothing was sent" in " ".join(dom.text)


def test_version_names_the_tool_and_beam():
    code, out, err = run_cli("--version")
    assert code == 0 and err == ""
    assert re.fullmatch(r"aplistorical \S+ \(apache-beam 2\.77\.\d+\)\n", out), out
