"""``--identify_mode per_file``: one $identify per user per export file, as Aplistorical sent."""

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.generated import GenerateEvents
from pipeline.ledger import write_record
from pipeline.snapshots import file_identify_uuid
from sandbox.amplitude import AmplitudeExportServer
from sandbox.posthog import PostHogCaptureServer
from tests.e2e import KEYS, Export, cli_args, report, run_cli
from tests.people_rows import person, row
from transforms.facts import HourFacts
from transforms.records import ExportLine
from transforms.translate import translate_line

pytestmark = pytest.mark.timeout(300)

HOUR_A, HOUR_B = "20240305T10", "20240305T11"
# user-1 in three files of three lines, its plan changing; its first line in a file is not its
# earliest event there, nor always the file's first line.
FILES = {
    (HOUR_A, "a#0.json"): [row("2024-03-01 10:00:00", user_properties=person("free")),
                           row("2024-03-01 09:00:00", user_properties=person("trial")),
                           row("2024-03-01 08:00:00", user=None, user_properties=person("x"))],
    (HOUR_A, "a#1.json"): [row("2024-03-02 08:00:00", user=None, user_properties=person("x")),
                           row("2024-03-02 10:00:00", device="device-2",
                               user_properties=person("pro")),
                           row("2024-03-02 09:00:00", user_properties=person("pro-trial"))],
    (HOUR_B, "b#0.json"): [row("2024-03-03 10:00:00", device=None,
                               user_properties=person("enterprise")),
                           row("2024-03-03 11:00:00", user_properties=person("enterprise")),
                           row("2024-03-03 08:00:00", user=None, user_properties=person("x"))],
}


def expected_identifies():
    """One per file: the file's first line with a user, as the translation sees it."""
    events = []
    for (hour, file), lines in FILES.items():
        first = next(line for line in lines if orjson.loads(line)["user_id"])
        event = translate_line(first).event
        device = orjson.loads(first)["device_id"]
        properties = {"$set": event["properties"]["$set"], "$geoip_disable": True,
                      "$lib": "aplistorical"}
        if device:
            properties["$anon_distinct_id"] = device
        events.append({"event": "$identify", "distinct_id": "user-1",
                       "uuid": file_identify_uuid(hour, file, "user-1"),
                       "timestamp": event["timestamp"], "properties": properties})
    return events


def test_per_file_identifies_from_the_facts_of_each_hour(tmp_path):
    (tmp_path / "facts").mkdir()
    for hour in (HOUR_A, HOUR_B):
        facts = HourFacts()
        for (file_hour, file), lines in FILES.items():
            if file_hour == hour:
                for number, line in enumerate(lines, 1):
                    facts.add(translate_line(line), ExportLine(hour, file, number, line))
        (tmp_path / "facts" / f"{hour}.json").write_bytes(orjson.dumps(facts.to_dict()))
        write_record(str(tmp_path), hour, "done", {})
    expected = expected_identifies()
    assert [e["properties"]["$set"]["plan"] for e in expected] == ["free", "pro", "enterprise"]
    assert "$anon_distinct_id" not in expected[2]["properties"]  # that row has no device
    with BeamTestPipeline() as pipeline:
        barrier = pipeline | beam.Create([None])
        generated = pipeline | GenerateEvents(str(tmp_path), [HOUR_A, HOUR_B], barrier,
                                              identify_mode="per_file", group_identify=False,
                                              person_snapshot=False)
        assert_that(generated.events, equal_to(expected))


def test_per_file_mode_end_to_end(tmp_path):
    # The sandbox cuts each hour into parts of three lines, in the order given.
    rows = [(hour, line) for (hour, _), lines in FILES.items() for line in lines]
    export = Export(HOUR_A, HOUR_B, rows)
    amplitude = AmplitudeExportServer(rows, api_key=KEYS["AMPLITUDE_API_KEY"],
                                      secret_key=KEYS["AMPLITUDE_SECRET_KEY"], part_rows=3)
    posthog = PostHogCaptureServer(KEYS["POSTHOG_API_KEY"])
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path,
                                           "--identify_mode", "per_file", "--no_group_identify",
                                           "--no_person_snapshot"))
        assert code == 0, err[-3000:]
        identifies = [e for e in posthog.events if e["event"] == "$identify"]
    # Files are named by the sandbox, so compare what each $identify says, not its uuid.
    def shown(events):
        return sorted((e["timestamp"], e["properties"]["$set"]["plan"],
                       e["properties"].get("$anon_distinct_id")) for e in events)
    assert len(identifies) == 3 and len({e["uuid"] for e in identifies}) == 3
    assert shown(identifies) == shown(expected_identifies())
    assert report(tmp_path)["generated_events_sent"] == {"$identify": 3}
