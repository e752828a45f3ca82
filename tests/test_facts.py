"""HourFacts picks for persons, groups and export files; merging and aggregating them in any order;
Amplitude's $groupidentify rows in the translation."""

import itertools
import random

import orjson
import pytest

from tests.people_rows import person, row
from transforms.facts import (FILES, GROUPS, PERSON_SET, PERSON_SET_ONCE, PICKS, HourFacts,
                              best_row, keyed_rows, merge_facts)
from transforms.person_facts import EARLIEST, LATEST, merge_person_rows
from transforms.posthog_rules import person_updates
from transforms.records import ExportLine
from transforms.settings import TranslationSettings
from transforms.translate import translate_line

HOUR = "20240305T10"


def facts_of(lines, files=None, **flags):
    """Facts of ``lines``; ``files`` names each line's export file (then ``files`` facts too)."""
    settings = TranslationSettings.from_flags(**flags)
    facts = HourFacts()
    for number, raw in enumerate(lines, 1):
        line = None if files is None else ExportLine(HOUR, files[number - 1], number, raw)
        facts.add(translate_line(raw, settings), line)
    return facts.to_dict()


def event_of(raw, **flags):
    return translate_line(raw, TranslationSettings.from_flags(**flags)).event


PLANS = [row("2024-03-01 09:00:00", user_properties=person("free", "news.example")),
         row("2024-03-02 09:00:00", user_properties=person("pro", "search.example")),
         row("2024-03-03 09:00:00", user_properties=person("enterprise", "ads.example"))]


def test_groupidentify_rows_are_skipped_and_ignore_event_still_comes_first():
    raw = row("2024-03-01 09:00:00", event_type="$groupidentify", groups={"company": "acme"})
    translation = translate_line(raw)
    assert (translation.event, translation.reason, translation.dead) == (
        None, "group_identify", False)
    assert translate_line(raw, TranslationSettings.from_flags(
        ignore_event=["$groupidentify"])).reason == "ignored"


def value_of(facts, kind, distinct_id, key):
    """The value ``kind`` keeps for ``distinct_id``'s property ``key`` (None when none)."""
    found = [r[3][key] for r in facts.get(kind, ()) if r[0] == distinct_id and key in r[3]]
    assert len(found) <= 1, "a property is kept by one row only"
    return found[0] if found else None


def test_person_gets_the_latest_set_and_the_earliest_set_once_in_any_order():
    for order in itertools.permutations(PLANS):
        facts = facts_of(order)
        latest, earliest = event_of(PLANS[2]), event_of(PLANS[0])
        set_, _ = person_updates(latest["properties"])
        _, once = person_updates(earliest["properties"])
        # What PostHog copies from the event by itself counts too ($browser_version here).
        assert "$browser_version" in set_ and "$initial_browser_version" in once
        assert facts[PERSON_SET] == [["user-1", latest["timestamp"], latest["uuid"],
                                      dict(sorted(set_.items()))]]
        assert facts[PERSON_SET][0][3]["plan"] == "enterprise"
        assert facts[PERSON_SET_ONCE] == [["user-1", earliest["timestamp"], earliest["uuid"],
                                           dict(sorted(once.items()))]]
        assert once["$initial_referrer"] == "news.example"


def test_each_property_keeps_the_value_of_the_latest_event_that_sets_it():
    early = row("2024-03-01 09:00:00", user_properties=person("free", coupon="A"),
                event_properties={"utm_source": "ads"})
    late = row("2024-03-02 09:00:00", user_properties=person("pro"), os_version="129")
    for order in itertools.permutations([early, late]):
        facts = facts_of(order)
        assert value_of(facts, PERSON_SET, "user-1", "plan") == "pro"
        assert value_of(facts, PERSON_SET, "user-1", "coupon") == "A"  # only the early one
        assert value_of(facts, PERSON_SET, "user-1", "utm_source") == "ads"
        assert value_of(facts, PERSON_SET, "user-1", "$browser_version") == "129"
        assert value_of(facts, PERSON_SET_ONCE, "user-1", "$initial_browser_version") == "128"
        assert value_of(facts, PERSON_SET_ONCE, "user-1", "$initial_utm_source") == "ads"
        assert len(facts[PERSON_SET]) == 2  # one row per event still holding a latest value


def test_a_later_row_without_user_properties_does_not_hide_the_earlier_ones():
    # A backend's row through the HTTP API: no user properties, no browser, no place.
    server = row("2024-03-09 09:00:00", user_properties={}, platform=None, os_name=None,
                 os_version=None, device_family=None, country=None)
    assert "$set" not in event_of(server)["properties"]
    facts = facts_of([*PLANS, server])
    assert facts[PERSON_SET][0][3]["plan"] == "enterprise"
    assert facts["days"]["2024-03-09"] == {"rows": 1, "events": 1}


def test_modes_without_set_take_the_rows_user_properties():
    facts = facts_of(PLANS, user_properties_mode="root")
    assert {k: v for k, v in facts[PERSON_SET][0][3].items() if k in person("")} == person(
        "enterprise", "ads.example")
    assert facts[PERSON_SET_ONCE][0][3]["$initial_referrer"] == "news.example"


def test_anonymous_rows_keep_their_person_facts_under_the_device():
    facts = facts_of([row("2024-03-01 09:00:00", user=None, user_properties=person("free"))])
    assert value_of(facts, PERSON_SET, "device-1", "plan") == "free"
    assert value_of(facts, PERSON_SET_ONCE, "device-1", "$initial_browser") == "Firefox"
    assert facts["pairs"] == []


def test_only_migrated_events_link_a_user_and_a_device():
    lines = [row("2024-03-01 09:00:00", user="u-skipped", event_type="session_start"),
             row("2024-03-01 09:00:00", user="u-dead", event_properties="not an object"),
             row("2024-03-01 09:00:00", user="u-group", event_type="$groupidentify",
                 groups={"company": "acme"}),
             row("2024-03-01 10:00:00", user="u-sent")]
    assert facts_of(lines)["pairs"] == [["u-sent", "device-1", "2024-03-01T10:00:00.000000Z"]]


def test_values_posthog_alters_are_counted_as_warnings():
    lines = [row("2024-03-01 09:00:00", user="u" * 201), row("2024-03-01 09:00:01", user="a\x00b"),
             row("2024-03-01 09:00:02", event_type="e" * 201),
             row("2024-03-01 09:00:03", groups={"company": "k" * 401}),
             row("2024-03-01 09:00:04", user="u" * 200, event_type="e" * 200,
                 groups={"company": "k" * 400})]
    assert facts_of(lines)["warnings"] == {"distinct_id_nul": 1, "distinct_id_too_long": 1,
                                           "event_name_too_long": 1, "group_key_too_long": 1}


def test_groups_as_string_list_and_number_of_several_types():
    raw = row("2024-03-01 09:00:00",
              groups={"company": "acme", "team": ["red", "blue"], "project": 42, "none": "",
                      "odd": {"a": 1}},
              group_properties={"company": {"acme": {"seats": 10}},
                                "team": {"red": {"floor": 1}, "blue": "not an object"}})
    event = event_of(raw)
    rows = {(r[0], r[1]): r for r in facts_of([raw])[GROUPS]}
    assert set(rows) == {("company", "acme"), ("team", "red"), ("team", "blue"),
                         ("project", "42")}
    assert rows[("company", "acme")] == ["company", "acme", event["timestamp"], event["uuid"],
                                         "user-1", {"seats": 10}]
    assert rows[("team", "red")][5] == {"floor": 1}
    assert rows[("team", "blue")][5] == {} and rows[("project", "42")][5] == {}


def test_a_groups_latest_properties_win_and_rows_without_them_do_not_count():
    def acme(day, seats, user="user-1"):
        return row(f"2024-03-0{day} 09:00:00", user=user, groups={"company": "acme"},
                   group_properties={"company": {"acme": {"seats": seats}}} if seats else {})
    lines = [acme(1, 10), acme(3, 30, user="user-2"), acme(2, 20), acme(4, None)]
    for order in itertools.permutations(lines):
        [group] = facts_of(order)[GROUPS]
        assert (group[4], group[5]) == ("user-2", {"seats": 30})
        assert group[2] == event_of(lines[1])["timestamp"]


def test_amplitude_groupidentify_rows_feed_groups_in_both_shapes():
    nested = row("2024-03-05 09:00:00", event_type="$groupidentify", user=None,
                 device="device-9", groups={"company": "acme"},
                 group_properties={"company": {"acme": {"seats": 50}}})
    operation = row("2024-03-06 09:00:00", event_type="$groupidentify",
                    groups={"company": ["globex"], "team": "red"},
                    group_properties={"$set": {"tier": "gold"}})
    nobody = row("2024-03-07 09:00:00", event_type="$groupidentify", user=None, device=None,
                 amplitude_id=None, groups={"company": "initech"},
                 group_properties={"$set": {"tier": "x"}})
    facts = facts_of([PLANS[0], nested, operation, nobody])
    rows = {(r[0], r[1]): r for r in facts[GROUPS]}
    assert set(rows) == {("company", "acme"), ("company", "globex"), ("team", "red")}
    assert rows[("company", "acme")][2:] == [
        "2024-03-05T09:00:00.000000Z", orjson.loads(nested)["uuid"], "device-9", {"seats": 50}]
    assert rows[("company", "globex")][4:] == ["user-1", {"tier": "gold"}]
    assert rows[("team", "red")][5] == {"tier": "gold"}
    # Skipped rows are not events and set no person; their day still counts their rows.
    assert facts["event_names"] == {"Clicked": 1}
    assert facts["days"]["2024-03-06"] == {"rows": 1, "events": 0}
    assert facts[PERSON_SET][0][2] == orjson.loads(PLANS[0])["uuid"]


def test_a_groupidentify_row_with_only_an_amplitude_id_sends_as_that_id():
    raw = row("2024-03-05 09:00:00", event_type="$groupidentify", user=None, device=None,
              amplitude_id=77, groups={"company": "acme"})
    assert facts_of([raw])[GROUPS][0][4] == "amplitude:77"


def test_files_keep_each_users_first_line_in_each_file():
    lines = [row("2024-03-03 09:00:00", user_properties=person("pro")),  # a.json line 1
             row("2024-03-01 09:00:00", user_properties=person("free")),  # a.json line 2
             row("2024-03-02 09:00:00", user="user-2", device=None,
                 user_properties=person("team")),  # a.json line 3
             row("2024-03-04 09:00:00", user_properties=person("enterprise")),  # b.json line 4
             row("2024-03-05 09:00:00", user=None, user_properties=person("x"))]  # b.json
    files = ["a.json", "a.json", "a.json", "b.json", "b.json"]
    facts = facts_of(lines, files)
    assert [(r[1], r[2], r[3], r[5], r[6]["plan"]) for r in facts[FILES]] == [
        ("a.json", "user-1", 1, "device-1", "pro"),  # the first line, not the earliest time
        ("a.json", "user-2", 3, None, "team"),
        ("b.json", "user-1", 4, "device-1", "enterprise")]
    assert facts[FILES][0][:5] == [HOUR, "a.json", "user-1", 1, "2024-03-03T09:00:00.000000Z"]
    # Reversed arrival, same choice: the line number decides, not the order lines come in.
    reverse = HourFacts()
    for number, raw in reversed(list(enumerate(lines, 1))):
        reverse.add(translate_line(raw), ExportLine(HOUR, files[number - 1], number, raw))
    assert reverse.to_dict()[FILES] == facts[FILES]
    assert FILES not in facts_of(lines)  # only gathered when the lines are given


def mixed_lines(seed: int) -> list[bytes]:
    """Rows of three users and three groups over a week, with exact duplicates and a tie."""
    rng = random.Random(seed)
    lines = []
    for number in range(60):
        user = rng.choice(["user-1", "user-2", "user-3"])
        day, hour = rng.randrange(1, 8), rng.randrange(24)
        group = rng.choice(["acme", "globex", ["red", "blue"]])
        lines.append(row(
            f"2024-03-0{day} {hour:02d}:00:00", user=user, name=f"row-{number}",
            user_properties=person(rng.choice(["free", "pro"]), rng.choice(["a", "b"]),
                                   visits=number) if rng.random() < 0.8 else {},
            groups={"company" if isinstance(group, str) else "team": group},
            group_properties={"company": {group: {"n": number}}} if isinstance(group, str)
            else {}))
    lines += lines[:5]  # the same rows exported twice
    # Same time and uuid, different properties: the canonical JSON settles it.
    lines.append(row("2024-03-08 23:00:00", user="user-1", name="tie",
                     user_properties=person("tie-a")))
    lines.append(row("2024-03-08 23:00:00", user="user-1", name="tie",
                     user_properties=person("tie-b")))
    return lines


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_split_and_order_gives_the_same_facts(seed):
    lines = mixed_lines(seed)
    files = [f"f{n % 3}" for n in range(len(lines))]
    everything = facts_of(lines, files)
    assert value_of(everything, PERSON_SET, "user-1", "plan") == "tie-b"
    rng = random.Random(seed)
    for _ in range(5):
        order = list(range(len(lines)))
        rng.shuffle(order)
        cut = rng.randrange(1, len(lines))
        parts = []
        for indexes in (order[:cut], order[cut:]):
            facts = HourFacts()
            for n in indexes:
                facts.add(translate_line(lines[n]), ExportLine(HOUR, files[n], n + 1, lines[n]))
            parts.append(facts.to_dict())
        assert merge_facts(*parts) == everything
        assert merge_facts(*reversed(parts)) == everything
        # What the job's Beam aggregation does with the same rows: best_row per key.
        for kind in PICKS:
            by_key = {}
            for key, picked in itertools.chain(*(keyed_rows(p, kind) for p in parts)):
                by_key.setdefault(key, []).append(picked)
            assert [best_row(kind, rows) for _, rows in sorted(by_key.items())] == \
                everything[kind]
        for kind, latest in ((PERSON_SET, LATEST), (PERSON_SET_ONCE, EARLIEST)):
            assert merge_person_rows(latest, *(p.get(kind, []) for p in parts)) == \
                everything[kind]


def test_facts_are_json_and_leave_out_empty_picks():
    facts = facts_of(mixed_lines(4), [f"f{n % 2}" for n in range(67)])
    assert orjson.loads(orjson.dumps(facts)) == facts
    assert set(facts) == {"pairs", "event_names", "days", PERSON_SET, PERSON_SET_ONCE, GROUPS,
                          FILES}
    assert HourFacts().to_dict() == {"pairs": [], "event_names": {}, "days": {}}


def test_best_row_refuses_nothing():
    with pytest.raises(ValueError, match="no groups rows"):
        best_row(GROUPS, [])
