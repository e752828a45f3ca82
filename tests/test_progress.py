"""The live progress line and the per-hour log lines, fed from ledger files as they appear."""

import io
import logging
import time

from pipeline import progress as progress_module
from pipeline.ledger import write_record
from pipeline.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_live_line_on_a_terminal_follows_the_ledger(tmp_path, monkeypatch):
    monkeypatch.setattr(progress_module, "REFRESH_SECONDS", 0.05)
    state = str(tmp_path)
    write_record(state, "20240101T00", "done", {"rows_read": 999, "events_sent": 999})
    screen = _Terminal()
    hours = ["20240101T01", "20240101T02"]
    with Progress(state, hours, stream=screen):
        time.sleep(0.2)
        write_record(state, "20240101T01", "done", {"rows_read": 10, "events_sent": 8})
        time.sleep(0.3)
    lines = [line for line in screen.getvalue().split("\r\033[K") if line.strip()]
    assert lines[0].startswith("hours 0/2 | rows read 0 | events sent 0")
    # The hour done before this run started is not counted as progress of this run.
    assert lines[-1].startswith("hours 1/2 | rows read 10 | events sent 8")
    assert "ETA" in lines[-1] and screen.getvalue().endswith("\n")


def test_one_log_line_per_hour_without_a_terminal(tmp_path, caplog):
    state = str(tmp_path)
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with Progress(state, ["20240101T00"], stream=io.StringIO()):
            write_record(state, "20240101T00", "empty", {"rows_read": 0})
    assert [r.getMessage() for r in caplog.records] == [
        "hour 20240101T00 empty: 0 rows read, 0 events sent (1/1 hours)"]


def test_quiet_prints_nothing(tmp_path, caplog):
    state = str(tmp_path)
    screen = _Terminal()
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with Progress(state, ["20240101T00"], quiet=True, stream=screen):
            write_record(state, "20240101T00", "done", {"rows_read": 1, "events_sent": 1})
    assert screen.getvalue() == "" and not caplog.records
