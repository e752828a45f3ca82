"""Every benchmark of ``make bench`` on tiny inputs: the figures are there, sane and consistent.

No timing is asserted: on a shared machine any speed is possible. What must hold at any speed is
that each figure is derived from the others as printed, and that every contender delivered what
it should have (or, for the SDK baseline, that its losses add up).
"""

from __future__ import annotations

import math

import orjson
import pytest

from benchmarks.__main__ import SECTIONS, run_all, table
from benchmarks._sandboxes import KEYS
from benchmarks.end_to_end import BASELINES, MODES, expected_pipeline_events, served_rows
from transforms.translate import identify_uuid

pytestmark = pytest.mark.timeout(480)

TINY = {"translate_rows": 300, "rows": 400, "hours": 2, "rss_small": 50, "rss_large": 500,
        "sink_events": 200, "sparse_hours": 6, "sparse_latency_ms": 20, "long_job_hours": 30,
        "long_job_gcs_hours": 0}


@pytest.fixture(scope="module")
def bench():
    said: list[str] = []
    figures = run_all(TINY, SECTIONS, say=said.append)
    return figures, "\n".join(said)


def test_translate_figures_are_consistent(bench):
    figures, _ = bench
    t = figures["translate"]
    assert t["rows"] == TINY["translate_rows"]
    assert t["translate_rows_per_s"] > 0 and t["orjson_rows_per_s"] > 0
    assert math.isclose(t["ratio"], t["translate_rows_per_s"] / t["orjson_rows_per_s"])
    assert 1000 < t["bytes_per_row"] < 3500  # the generator's rows are 1-3 KB


def test_pipeline_delivers_exactly_what_it_should(bench):
    figures, _ = bench
    e2e = figures["end_to_end"]
    assert e2e["rows_generated"] == TINY["rows"] and 0 < e2e["rows_served"] <= TINY["rows"]
    for mode in MODES:
        run = e2e["contenders"][mode]
        assert run["missing"] == 0 and run["unexpected"] == {} and run["duplicates"] == 0, run
        assert run["events_received"] == run["events_expected"] > 0
        report = run["report"]
        assert report["reconciled"] and report["rows_read"] == e2e["rows_served"]
        assert run["events_received"] == (report["events_sent"]
                                          + sum(report["generated_events_sent"].values()))
        assert "$identify" not in run["expected_from_ledger"]
        assert MODES[mode][-1] in run["command"] and KEYS["POSTHOG_API_KEY"] not in run["command"]


def test_rates_and_ratios_follow_from_the_counts(bench):
    figures, _ = bench
    runs = figures["end_to_end"]["contenders"]
    assert set(runs) == set(MODES) | set(BASELINES)
    for name, run in runs.items():
        assert run["seconds"] > 0 and run["cpu_seconds"] > 0, name
        assert math.isclose(run["events_per_second_wall"], run["events_received"] / run["seconds"])
        if run["events_per_second_steady"] is not None:
            assert run["events_per_second_steady"] > 0
            assert 0 <= run["startup_seconds"] <= run["seconds"] + 1  # polled, so a little late
    for mode in MODES:
        for baseline in BASELINES:
            assert math.isclose(runs[mode]["ratios"][baseline]["wall"],
                                runs[mode]["events_per_second_wall"]
                                / runs[baseline]["events_per_second_wall"])


@pytest.mark.parametrize("name", BASELINES)
def test_sdk_baseline_losses_add_up(bench, name):
    figures, _ = bench
    e2e = figures["end_to_end"]
    run = e2e["contenders"][name]
    sdk = run["sdk"]
    converted = (e2e["rows_served"] - sum(sdk["rows_skipped"].values())
                 - sum(sdk["rows_failed"].values()))
    assert run["events_expected"] == converted
    assert sdk["events_captured"] + sdk["events_dropped"] == converted
    assert run["events_received"] + run["missing"] == converted and run["unexpected"] == {}
    assert run["missing"] == sdk["events_dropped"] + sdk["events_failed_upload"]
    if name == "sdk_no_drop":
        assert sdk["events_dropped"] == 0 and "max_queue_size" in run["command"]


def test_rss_and_sink_figures_are_consistent(bench):
    figures, _ = bench
    rss = figures["rss"]
    assert (rss["small"]["rows"], rss["large"]["rows"]) == (TINY["rss_small"], TINY["rss_large"])
    for run in (rss["small"], rss["large"]):
        assert run["peak_rss_mb"] >= run["baseline_rss_mb"] > 0
    assert math.isclose(rss["peak_rss_ratio"],
                        rss["large"]["peak_rss_mb"] / rss["small"]["peak_rss_mb"], abs_tol=1e-3)
    sink = figures["sink"]
    assert sink["events"] >= TINY["sink_events"] and sink["requests"] >= 1
    assert sink["cpu_seconds"] > 0 and sink["events_per_second"] > 0


def test_output_names_every_figure_and_no_key(bench):
    figures, said = bench
    for number in range(1, 9):
        assert f"\n{number}. " in "\n" + said
    verdicts = said.count("TARGET MISSED") + said.count("target met")
    # translate, RSS, sparse, e2e rates and e2e CPU
    assert verdicts == 3 + len(MODES) * len(BASELINES) + len(MODES)
    rendered = table(figures)
    for label in ("translate rows/s", "e2e ev/s wall | steady, in_process vs SDK",
                  "default vs SDK no-drop", "delivered/expected, SDK no-drop",
                  "e2e CPU s/100k ev, in_process", "peak RSS MB",
                  "WriteToPostHog CPU s/100k ev", "floor CPU s/100k ev"):
        assert label in rendered
    orjson.dumps(figures)  # --json must be able to write them
    for key in KEYS.values():
        assert key not in said and key not in rendered


def test_expected_events_follow_the_translation_and_the_pairs():
    served = served_rows(300, "20240301T00", 2, seed=3)
    lines = [line for _, line in served]
    expected = expected_pipeline_events(lines)
    rows = [orjson.loads(line) for line in lines]
    pairs = {(row["user_id"], row["device_id"]) for row in rows
             if row.get("user_id") and row.get("device_id") and row.get("event_time")}
    identifies = {uuid for uuid, name in expected.items() if name == "$identify"}
    assert identifies <= {identify_uuid(user, device) for user, device in pairs}
    assert len(identifies) >= 0.9 * len(pairs)  # rows with unparseable times link no pair
    assert not {"session_start", "session_end"} & set(expected.values())


def test_served_rows_leave_out_only_lines_that_are_not_json():
    served = served_rows(2000, "20240301T00", 2, seed=4)
    assert 1900 < len(served) <= 2000
    for hour, line in served:
        assert isinstance(orjson.loads(line), dict) and len(hour) == 11


def test_sparse_and_long_job_figures_are_consistent(bench):
    figures, said = bench
    sparse = figures["sparse"]
    assert sparse["hours"] == TINY["sparse_hours"]
    for concurrency in (4, 1):
        run = sparse[f"concurrency_{concurrency}"]
        assert math.isclose(run["hours_per_second"], TINY["sparse_hours"] / run["seconds"])
    assert math.isclose(sparse["ratio"], sparse["concurrency_4"]["hours_per_second"]
                        / sparse["concurrency_1"]["hours_per_second"])
    assert sparse["keepalive"]["nagle_off_ms"] > 0 and sparse["keepalive"]["nagle_on_ms"] > 0
    local = figures["long_job"]["local"]
    assert local["hours"] == TINY["long_job_hours"] and "gcs_emulator" not in figures["long_job"]
    assert all(local[name] > 0 for name in ("rerun_with_index_s", "rerun_without_index_s",
                                            "first_request_s"))
    assert "7. Start-up of a long job" in said and "done-job rerun s" in table(figures)


def test_floor_does_the_pipelines_work_on_the_same_rows(bench):
    figures, _ = bench
    floor, e2e = figures["floor"], figures["end_to_end"]
    report = e2e["contenders"]["in_process"]["report"]
    assert floor["rows"] == e2e["rows_served"]
    # Its events are the pipeline's, less the $groupidentify it leaves out.
    generated = {name: count for name, count in report["generated_events_sent"].items()
                 if name != "$groupidentify"}
    assert floor["generated_events"] == generated
    assert floor["events"] == report["events_sent"] + sum(generated.values())
    seconds = floor["cpu_seconds"]
    assert set(seconds) == {"read", "translate", "facts", "encode", "compress", "generated",
                            "startup"}
    assert all(value > 0 for value in seconds.values())
    assert math.isclose(floor["total_cpu_seconds"], sum(seconds.values()))
    assert math.isclose(floor["gil_cpu_seconds"],
                        floor["total_cpu_seconds"] - seconds["read"] - seconds["compress"])
    assert math.isclose(floor["cpu_seconds_per_100k_events"],
                        floor["total_cpu_seconds"] * 100_000 / floor["events"])
    assert floor["in_process_cpu_seconds"] == e2e["contenders"]["in_process"]["cpu_seconds"]
    assert floor["five_times_wall_seconds"] > 0
