"""report.html: rendered in a real browser (headless Chromium), checked in the DOM it builds."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.report_html import render_report_html

CHROMIUM = "/usr/bin/chromium"
SHAPE = (4, 3, 2, 2, 2, 3, 4, 6, 8, 9, 10, 10, 11, 12, 12, 12, 11, 11, 10, 9, 8, 7, 6, 5)


def sample_report(days: int = 14) -> dict:
    """A report as a two-week job with two failed hours and some dead letters would write it."""
    start = datetime(2024, 3, 1)
    per_hour, failed_hours = [], []
    for index in range(days * 24):
        hour = (start + timedelta(hours=index)).strftime("%Y%m%dT%H")
        if index in (100, 101):
            failed_hours.append({"hour": hour, "detail": "Amplitude answered 504 five times "
                                                         "(gateway timeout)"})
            continue
        rows = SHAPE[index % 24] * 410 + (index * 37) % 300
        per_hour.append({"hour": hour, "rows_read": rows, "events_sent": rows - rows // 40})
    rows_read = sum(h["rows_read"] for h in per_hour)
    skipped = {"ignored_event": 1_523, "session_marker": 2_810}
    dead = {"invalid_json": 41, "missing_event_type": 17, "no_identity": 23,
            "unparseable_time": 12, "delivery_failed": 100}
    events_sent = rows_read - sum(skipped.values()) - sum(dead.values())
    per_day = []
    for index in range(-1, days):
        day = (start + timedelta(days=index)).strftime("%Y-%m-%d")
        hours = per_hour[index * 24:(index + 1) * 24] if index >= 0 else []
        rows = sum(h["rows_read"] for h in hours) or 240
        per_day.append({"day": day, "rows": rows, "events": rows - rows // 40})
    names = ["$pageview", "$autocapture", "Viewed Product", "Screen: Home", "Added to Cart",
             "Searched", "Screen: Product", "session_end", "Clicked CTA", "Email Delivered",
             "Order Shipped", "Purchase Completed", "Invoice Paid", "Push Opened", "$identify"]
    top = [{"event": name, "count": events_sent // (index + 2)} for index, name in enumerate(names)]
    examples = {
        reason: [{"hour": per_hour[(31 * r + 53 * i) % len(per_hour)]["hour"],
                  "file": f"187520/187520_2024-03-{1 + (r + 3 * i) % 14:02d}_{(7 * r + i) % 24}"
                          f"#{i % 2}.json.gz",
                  "line_number": 211 + 997 * r + 389 * i} for i in range(3)]
        for r, reason in enumerate(dead)}
    return {
        "job_name": "acme-amplitude-2024-q1", "work_dir": "gs://acme-migrations/acme-2024-q1",
        "dry_run": False, "status": "incomplete",
        "started_at": "2024-06-02T09:14:03+00:00", "finished_at": "2024-06-02T11:02:41+00:00",
        "rows_read": rows_read, "events_sent": events_sent, "events_translated": events_sent + 100,
        "rows_skipped": skipped, "rows_dead_lettered": dead, "reconciled": True,
        "generated_events_sent": {"$identify": 18_204, "$groupidentify": 311},
        "generated_events_failed": {},
        "hours": {"total": days * 24, "done": days * 24 - 5, "empty": 3, "failed": 2, "pending": 0},
        "failed_hours": failed_hours,
        "settings": {"start": "20240301T00", "end": "20240314T23",
                     "job_name": "acme-amplitude-2024-q1",
                     "source": "amplitude", "amplitude_region": "eu",
                     "posthog_host": "https://eu.i.posthog.com", "batch_size": 1000,
                     "max_events_per_second": 2000, "ignore_event": ["Debug Ping"],
                     "rename_event": ["Signed Up::user signed up"], "user_properties_mode": "set",
                     "preserve_sources": True, "dry_run": False,
                     "api_keys_from": "AMPLITUDE_API_KEY, AMPLITUDE_SECRET_KEY, POSTHOG_API_KEY"},
        "per_hour": per_hour, "per_day": per_day, "top_events": top,
        "dead_letter_examples": examples,
        "resume_command": "python -m pipeline --work_dir gs://acme-migrations/acme-2024-q1",
    }


class _Elements(HTMLParser):
    """Tags with their attributes and the text inside, enough to query a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing (the test runs as root)."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        commands = (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"])
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if done.returncode != 0:
                pytest.fail(f"headless Chromium is needed to render report.html and "
                            f"'{' '.join(command)}' failed ({done.returncode}): "
                            f"{done.stderr.strip()[-500:]}")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


def _chromium(binary: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={profile}", *arguments],
        capture_output=True, text=True, timeout=120)


def _parsed_dom(binary: str, profile: Path, page: Path, parser):
    """``page`` as Chromium built it, fed to ``parser`` (an ``HTMLParser``), which is returned."""
    shown = _chromium(binary, profile, "--dump-dom", page.as_uri())
    assert shown.returncode == 0, shown.stderr[-2000:]
    parser.feed(shown.stdout)
    return parser


@pytest.fixture(scope="module")
def rendered(chromium, tmp_path_factory):
    """The sample report rendered by Chromium: its DOM and a screenshot."""
    folder = tmp_path_factory.mktemp("report")
    page = folder / "report.html"
    page.write_text(render_report_html(sample_report()), encoding="utf-8")
    dom = _chromium(chromium, folder / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    screenshot = folder / "report.png"
    shot = _chromium(chromium, folder / "profile", "--window-size=1280,2900",
                     f"--screenshot={screenshot}", page.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    return dom.stdout, screenshot


def test_the_browser_builds_both_charts_and_the_reconciliation_table(rendered):
    dom, _ = rendered
    elements = _parse(dom)
    charts = [attrs for tag, attrs in elements.tags if tag == "svg"]
    assert [chart["aria-label"] for chart in charts] == [
        "Rows read and events sent per day, by event time",
        "Rows read and events sent per export hour"]
    assert sum(tag == "rect" for tag, _ in elements.tags) > 2 * 15  # the daily bars at least
    assert any(tag == "polyline" for tag, _ in elements.tags)  # 336 hours: drawn as lines
    assert ("table", {"class": "reconciliation"}) in elements.tags
    text = " ".join(elements.text)
    assert "✓ Every row read is accounted for." in text
    for reason in ("invalid_json", "delivery_failed", "unparseable_time"):
        assert reason in text
    assert "python -m pipeline --work_dir gs://acme-migrations/acme-2024-q1" in text
    assert "python -m pipeline resend --work_dir gs://acme-migrations/acme-2024-q1" in text
    assert "Amplitude answered 504 five times" in text
    assert "$pageview" in text and "posthog_host" in text


def test_the_screenshot_is_a_png_with_something_on_it(rendered):
    _, screenshot = rendered
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a blank 1280x2900 page compresses to a few kilobytes


def test_a_gap_in_the_reconciliation_is_shown_as_a_warning():
    report = sample_report(days=2)
    report["rows_read"] += 7
    page = render_report_html(report)
    assert "⚠ 7 rows unaccounted for" in page
    assert "Every row read is accounted for" not in page


def test_every_string_from_the_report_is_escaped():
    report = sample_report(days=1)
    hostile = '<script>alert("x")</script>'
    report["job_name"] = hostile
    report["settings"]["ignore_event"] = [hostile]
    report["top_events"][0]["event"] = hostile
    report["rows_dead_lettered"] = {hostile: 1}
    report["dead_letter_examples"] = {hostile: [{"hour": hostile, "file": hostile,
                                                 "line_number": 3}]}
    report["failed_hours"] = [{"hour": "20240301T05", "detail": hostile}]
    report["per_day"][0]["day"] = hostile
    page = render_report_html(report)
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert not any(tag == "script" for tag, _ in _parse(page).tags)


def test_the_page_needs_nothing_from_the_network():
    page = render_report_html(sample_report(days=1))
    tags = _parse(page).tags
    assert not [attrs for tag, attrs in tags if tag in ("script", "link", "img", "iframe")]
    assert "url(" not in page and "@import" not in page


def test_a_dry_run_and_an_empty_job_still_render():
    report = sample_report(days=1) | {"dry_run": True, "events_sent": 0}
    page = render_report_html(report)
    assert "Events translated" in page and "dry run: nothing was sent" in page
    empty = render_report_html({"job_name": "new-job", "status": "incomplete"})
    assert "No data yet" in empty and "None: no row or event was set aside." in empty


def test_a_long_range_is_summed_into_buckets():
    report = sample_report(days=120)  # 2,880 hours
    page = render_report_html(report)
    assert "Each point sums 2 consecutive hours." in page
