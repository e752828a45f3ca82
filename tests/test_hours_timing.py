"""When an hour may be fetched, migrated, or trusted as empty (connectors.hours)."""

import datetime as dt

from connectors.hours import (empty_is_final, exportable_at, hours_too_recent_to_migrate,
                              migratable_at)
from pipeline.ledger import settled

UTC = dt.timezone.utc


def test_an_hour_is_exportable_two_hours_after_it_ends():
    assert exportable_at("20240305T10") == dt.datetime(2024, 3, 5, 13, tzinfo=UTC)


def test_an_hour_is_migratable_48_hours_after_it_ends():
    # PostHog's migration guide: timestamps at least 48 hours before the import.
    assert migratable_at("20240305T10") == dt.datetime(2024, 3, 7, 11, tzinfo=UTC)
    now = dt.datetime(2024, 3, 7, 10, 30, tzinfo=UTC)
    assert hours_too_recent_to_migrate(["20240305T08", "20240305T09", "20240305T10"], now) == [
        "20240305T10"]
    assert hours_too_recent_to_migrate(["20240305T09"], now.replace(tzinfo=None)) == []


def test_an_empty_answer_is_final_only_when_fetched_a_day_after_the_hour_ended():
    assert not empty_is_final("20240305T10", "2024-03-05T13:00:00Z")
    assert not empty_is_final("20240305T10", "2024-03-06T10:59:59Z")
    assert empty_is_final("20240305T10", "2024-03-06T11:00:00Z")
    assert not empty_is_final("20240305T10", None)  # unknown: fetch again to be sure


def test_an_hour_is_settled_when_done_or_empty_for_good():
    # The CLI fetches unsettled hours again and generated events wait for every hour to settle.
    records = {
        "20240305T10": {"status": "empty", "fetched_after": "2024-03-05T13:00:00Z"},
        "20240305T11": {"status": "empty", "fetched_after": "2024-03-08T00:00:00Z"},
        "20240305T12": {"status": "done", "fetched_after": "2024-03-05T15:00:00Z"},
        "20240305T13": {"status": "failed"},
        # Written before fetched_after existed: judged by when they were written.
        "20240305T14": {"status": "empty", "updated_at": "2024-03-05T16:00:00Z"},
        "20240305T15": {"status": "empty", "updated_at": "2024-03-09T00:00:00Z"},
    }
    assert [h for h in sorted(records) if settled(records, h)] == [
        "20240305T11", "20240305T12", "20240305T15"]
    assert not settled(records, "20240305T16")  # pending: no record
