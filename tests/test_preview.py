"""``python -m pipeline preview`` through the real CLI: against the Export API sandbox, against
export files and an existing job's folder, its bad-input exits, and the page in Chromium."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser

import orjson
import pytest

from connectors import archive
from pipeline import cli
from tests.e2e import KEYS, Export, make_export, run_cli, servers
from tests.test_report_html import _parsed_dom, chromium  # noqa: F401 - chromium is a fixture
from transforms.settings import TranslationSettings
from transforms.translate import translate_line

pytestmark = pytest.mark.timeout(300)

ROWS = 150  # the export below holds 100 rows an hour: the preview needs two of its four hours


class _Page(HTMLParser):
    """The preview's rows (outcome, source and result as shown), generated events and tags."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.generated: list[str] = []
        self.tags: set[str] = set()
        self.links: list[str] = []
        self.summary: list[str] = []
        self._cell: str | None = None
        self._pre = False
        self._in_summary = False
        self._in_generated_name = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.links += [attrs[a] for a in ("src", "href") if a in attrs]
        classes = (attrs.get("class") or "").split()
        if tag == "tr" and "row" in classes:
            self.rows.append({"outcome": classes[1], "source": "", "result": "",
                              "source_pre": "", "result_pre": ""})
        elif tag == "tr" and "generated" in classes:
            self.generated.append("")
            self._in_generated_name = True
        elif tag == "td" and self.rows and classes and classes[0] in ("source", "result"):
            self._cell = classes[0]
        elif tag == "pre":
            self._pre = True
        elif tag == "table" and "summary" in classes:
            self._in_summary = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
            self._in_generated_name = False
        elif tag == "pre":
            self._pre = False
        elif tag == "table":
            self._in_summary = False

    def handle_data(self, data):
        if self._cell:
            self.rows[-1][self._cell] += data
            if self._pre:
                self.rows[-1][self._cell + "_pre"] += data
        if self._in_generated_name:
            self.generated[-1] += data
        if self._in_summary:
            self.summary.append(data)


def _dom(binary, tmp_path, page) -> _Page:
    return _parsed_dom(binary, tmp_path / "profile", page, _Page())


def _export() -> Export:
    export = make_export(rows=400, start="20240408T00", hours=4, seed=43)
    good = orjson.loads(export.rows[0][1])
    # Broken rows inside the first hour, so the preview meets them; a session marker is common
    # enough in generated rows already.
    export.rows[5:5] = [(export.hours[0], b'{"event_type": "cut short'),
                        (export.hours[0], orjson.dumps({**good, "event_type": None}))]
    return export


def _served_lines(zips: dict[str, bytes], tmp_path) -> list[tuple[str, bytes]]:
    """(hour, line) in the order the Export API serves them, read as the job reads them."""
    lines = []
    for hour, body in zips.items():
        path = tmp_path / f"{hour}.zip"
        path.write_bytes(body)
        lines += [(hour, line) for _, _, line in archive.iter_lines(str(path), archive.ZIP)]
    return lines


@pytest.fixture(scope="module")
def sandbox_preview(tmp_path_factory):
    """One preview of the first ROWS rows, read from the Export API sandbox."""
    export = _export()
    amplitude, _ = servers(export)
    folder = tmp_path_factory.mktemp("preview")
    work_dir = folder / "job"
    with amplitude:
        code, out, err = run_cli("preview", "--start", export.start, "--end", export.end,
                                 "--work_dir", str(work_dir), "--amplitude_url", amplitude.url,
                                 "--rows", str(ROWS), env={"POSTHOG_API_KEY": ""})
        requested = {hour: amplitude.request_count(hour) for hour in export.hours}
        served = _served_lines({h: amplitude.export_zip(h, h) for h in export.hours}, folder)
    return export, work_dir, code, out, err, requested, served


def test_preview_reads_only_the_hours_it_needs_and_sends_nothing(sandbox_preview):
    export, work_dir, code, out, err, requested, served = sandbox_preview
    assert code == 0, err[-3000:]
    needed = {hour for hour, _ in served[:ROWS]}
    assert len(needed) == 2  # the export is made so that the rows fill more than one hour
    assert requested == {hour: int(hour in needed) for hour in export.hours}
    assert f"Preview: {work_dir / 'preview.html'}" in out
    assert f"{ROWS:>8,}  rows read from 2 hour(s)" in out
    assert "dead letter: invalid_json" in out and "dead letter: missing_event_type" in out
    # A preview writes its page and nothing of a job's state.
    assert sorted(p.name for p in work_dir.iterdir()) == ["preview.html"]
    page = (work_dir / "preview.html").read_text()
    for key in KEYS.values():
        assert key not in out + err + page


def test_preview_page_in_chromium_shows_each_row_beside_what_it_becomes(
        sandbox_preview, chromium, tmp_path):  # noqa: F811
    export, work_dir, code, _, err, _, served = sandbox_preview
    assert code == 0, err[-3000:]
    dom = _dom(chromium, tmp_path, work_dir / "preview.html")
    assert "script" not in dom.tags
    assert all(not re.match(r"[a-z]+:", link) for link in dom.links), dom.links  # nothing fetched
    lines = [line for _, line in served[:ROWS]]
    assert len(dom.rows) == ROWS
    # The job a preview describes is named as a run of the same flags would name it.
    settings = TranslationSettings.from_flags(
        import_job_id=f"amplitude-{export.start}-{export.end}")
    for shown, line in zip(dom.rows, lines):
        translation = translate_line(line, settings)
        if translation.row is not None:
            assert orjson.loads(shown["source_pre"]) == orjson.loads(line)
        else:
            assert shown["source_pre"] == line.decode()
        if translation.event is not None:
            assert shown["outcome"] == "event"
            assert orjson.loads(shown["result_pre"]) == translation.event
        else:
            assert shown["outcome"] == ("dead" if translation.dead else "skipped")
            assert translation.reason in shown["result"]
            assert translation.detail in shown["result"]
    assert {row["outcome"] for row in dom.rows} == {"event", "skipped", "dead"}
    summary = "".join(dom.summary)
    assert "Dead letter: invalid_json" in summary and "Skipped: session_marker" in summary

    # The generated events are those the job would send for exactly these rows, found from the
    # rows independently of the pipeline's facts.
    expected = Export(served[0][0], served[ROWS - 1][0], served[:ROWS]).expected()
    generated = sorted(e["event"] for e in expected.values() if "uuid" not in e)
    assert generated and sorted(dom.generated) == generated


def test_preview_of_export_files_needs_no_range_and_no_key(tmp_path):
    export = _export()
    amplitude, _ = servers(export)
    with amplitude:
        zips = {hour: amplitude.export_zip(hour, hour) for hour in export.hours}
    sources = tmp_path / "exports"
    sources.mkdir()
    for hour, body in zips.items():
        (sources / f"{hour}.zip").write_bytes(body)
    first = [line for _, line in _served_lines(zips, tmp_path)][:20]
    # The job's own settings reach the rows: ignore the first event that would be sent.
    ignored = next(orjson.loads(line)["event_type"] for line in first
                   if translate_line(line).event is not None)
    work_dir = tmp_path / "files-job"
    code, out, err = run_cli("preview", "--source", "files",
                             "--source_path", str(sources / "*.zip"), "--work_dir", str(work_dir),
                             "--ignore_event", ignored, "--rows", "20",
                             env={key: "" for key in KEYS})
    assert code == 0, err[-3000:]
    assert f"{20:>8,}  rows read from 1 hour(s)" in out and "skipped: ignored" in out
    page = (work_dir / "preview.html").read_text()
    settings = TranslationSettings.from_flags(ignore_event=[ignored])
    for translation in (translate_line(line, settings) for line in first):
        assert (translation.event["uuid"] if translation.event else translation.reason) in page
    assert page.count('class="row ') == 20


def test_preview_takes_an_existing_jobs_settings(tmp_path):
    export = _export()
    amplitude, _ = servers(export)
    work_dir = tmp_path / "job"
    with amplitude:
        code, _, err = run_cli("init", "--start", export.start, "--end", export.end,
                               "--work_dir", str(work_dir), "--amplitude_url", amplitude.url,
                               "--identify_mode", "off", "--no_person_snapshot",
                               "--no_group_identify", "--no_check")
        assert code == 0, err
        code, out, err = run_cli("preview", "--work_dir", str(work_dir), "--rows", "5")
    assert code == 0, err[-3000:]
    assert "generated" not in out  # identify, groups and persons are all off in this job
    page = (work_dir / "preview.html").read_text()
    assert page.count('class="row ') == 5
    assert '<p class="muted">None for these rows with these settings.</p>' in page


def _write_gz(path, lines: list[bytes]) -> None:
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))


@pytest.mark.parametrize("case", ["refused key", "no data", "unreadable file", "bad rows",
                                  "no keys", "no files"])
def test_bad_input_gets_one_line_and_the_jobs_exit_code(case, tmp_path, monkeypatch, capsys):
    # In this process: the command reads and translates only, so no subprocess is needed.
    export = make_export(rows=20, start="20240408T00", hours=2, seed=5)
    amplitude, _ = servers(export)
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    source = ["--start", export.start, "--end", export.end, "--amplitude_url", amplitude.url]
    if case == "refused key":
        monkeypatch.setenv("AMPLITUDE_SECRET_KEY", "wrong")
        expected, flag = 1, "--amplitude_api_key"
    elif case == "no data":
        source = ["--start", "20240101T00", "--end", "20240101T02",
                  "--amplitude_url", amplitude.url]
        expected, flag = 5, "--start"
    elif case == "unreadable file":
        _write_gz(tmp_path / "20240408T00.json.gz", [b'{"event_type": "a"}'])
        (tmp_path / "20240408T01.json.gz").write_bytes(b"\x1f\x8b not really gzip")
        source = ["--source", "files", "--source_path", str(tmp_path / "*.json.gz"),
                  "--rows", "5"]
        expected, flag = 3, "20240408T01"
    elif case == "no files":
        source = ["--source", "files", "--source_path", str(tmp_path / "none" / "*.zip")]
        expected, flag = 1, "--source_path"
    elif case == "bad rows":
        source += ["--rows", "0"]
        expected, flag = 2, "--rows"
    else:
        monkeypatch.delenv("AMPLITUDE_API_KEY")
        expected, flag = 2, "--amplitude_api_key"
    work_dir = tmp_path / "job"
    with amplitude:
        code = cli.run(["preview", *source, "--work_dir", str(work_dir)])
    out, err = capsys.readouterr()
    assert code == expected, err[-3000:]
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert flag in err
    assert not (work_dir / "preview.html").exists()
    for key in KEYS.values():
        assert key not in out + err
