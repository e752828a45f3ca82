"""StageRecordCoder: Beam's default encoding, with a marker's size estimated without its facts."""

from apache_beam.coders import FastPrimitivesCoder

from transforms.coders import StageRecordCoder
from transforms.records import DeadLetter, HourMarker, LineChunk


def _marker(rows: int, letters: int = 0) -> HourMarker:
    facts = {"person_set": [[f"user-{n}", "2024-03-01T00:00:00.000000Z", "0" * 36,
                             {"plan": "pro", "n": n}] for n in range(rows)]}
    dead = tuple(DeadLetter(reason="invalid_json", stage="translate", hour="20240301T00",
                            file="f", line_number=n, payload="{", detail=None)
                 for n in range(letters))
    return HourMarker("20240301T00", "done", None, {"rows_read": rows}, facts, dead)


def test_every_record_comes_back_as_it_went():
    coder = StageRecordCoder()
    event = {"event": "x", "distinct_id": "u", "uuid": "0" * 36,
             "timestamp": "2024-03-01T00:00:00.000000Z", "properties": {"a": [1, {"b": None}]}}
    for value in (event, [event, event], _marker(3, letters=2),
                  LineChunk("20240301T00", [("f", 1, b'{"a":1}')])):
        assert coder.decode(coder.encode(value)) == value


def test_a_markers_size_is_estimated_from_its_letters_not_its_facts():
    impl = StageRecordCoder().get_impl()
    assert impl.estimate_size(_marker(10)) == impl.estimate_size(_marker(20_000))
    assert impl.estimate_size(_marker(10, letters=3)) > impl.estimate_size(_marker(10))
    # A chunk's events: near what Beam's default coder would say, without encoding them all.
    events = [{"event": "x", "properties": {"k": "v" * (n % 100)}} for n in range(500)]
    exact = FastPrimitivesCoder().get_impl().estimate_size(events)
    assert 0.8 * exact < impl.estimate_size(events) < 1.2 * exact
    # Anything else is estimated as Beam's default coder estimates it.
    for value in (events[:2], {"event": "x"}, "text"):
        assert impl.estimate_size(value) == FastPrimitivesCoder().get_impl().estimate_size(value)
