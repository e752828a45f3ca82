"""Row contents stay out of logs and reports: only the job's own data folders may hold them.

A full CLI run (with bad rows, failed deliveries, kept exports and translations), then ``status``
and ``resend``, over rows that carry a planted e-mail address and other distinctive values.
"""

from __future__ import annotations

import orjson
import pytest

from tests.e2e import KEYS, cli_args, make_export, run_cli, servers

pytestmark = pytest.mark.timeout(300)

EMAIL = "planted.person+privacy@example.org"
COUPON = "QUOKKA-7731-ZANZIBAR"
# Folders of the work_dir that hold rows or what is made of them, by design: dead letters, the
# kept exports and translations, and the facts (persons' latest properties, user/device pairs)
# that the generated events are built from.
ROW_FOLDERS = {"dead_letter", "exports", "translated", "facts"}


def _planted_export():
    export = make_export(rows=600, start="20240406T00", hours=3, seed=31)
    rows, distinctive = [], set()
    for index, (hour, line) in enumerate(export.rows):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            rows.append((hour, line))
            continue
        if index % 37 == 0:
            row["user_properties"] = {**(row["user_properties"] or {}), "email": EMAIL}
            row["event_properties"] = {**(row["event_properties"] or {}), "coupon": COUPON}
        if index % 101 == 0:
            row["user_id"] = EMAIL  # user ids that are e-mail addresses are common
        if index % 53 == 0:
            distinctive.update(v for v in (row["$insert_id"], row["device_id"]) if v)
        rows.append((hour, orjson.dumps(row)))
    hour = export.rows[0][0]
    rows += [
        # A row cut short, and one with no event_type: both dead letters carrying the address.
        (hour, b'{"event_type": "Signed Up", "user_id": "' + EMAIL.encode() + b'", "user_prop'),
        (hour, orjson.dumps({**orjson.loads(rows[1][1]), "event_type": None,
                             "user_properties": {"email": EMAIL}})),
    ]
    export.rows = rows
    return export, sorted(distinctive)


def test_no_row_content_in_logs_or_reports(tmp_path):
    export, distinctive = _planted_export()
    amplitude, posthog = servers(export, retry_after="0")
    posthog.inject(*[503] * 6)  # the first batches fail for good: delivery_failed dead letters
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path,
                                           "--batch_size", "50", "--max_retry_seconds", "0.2",
                                           "--preserve_sources", "--preserve_translations"))
        assert code == 3, err[-3000:]  # events await resend
        logs = [out, err]
        for command in ("status", "resend"):
            code, out, err = run_cli(command, "--work_dir", str(tmp_path))
            assert code == 0, err[-3000:]
            logs += [out, err]
    text = "\n".join(logs)
    assert "Rows read" in text and "Re-sent" in text and " INFO " in text  # real logs

    # The values really went through the job: PostHog got them, the dead letters kept them.
    sent = orjson.dumps(posthog.events).decode()
    assert EMAIL in sent and COUPON in sent
    distinctive = [v for v in distinctive if v in sent]  # not every row becomes an event
    assert len(distinctive) >= 10
    letters = b"".join(p.read_bytes() for p in (tmp_path / "dead_letter").glob("*.jsonl"))
    assert EMAIL.encode() in letters

    for value in (EMAIL, COUPON, *distinctive):
        assert value not in text, f"a log line carries row content: {value}"
    for name in ("report.json", "report.html"):
        page = (tmp_path / name).read_text()
        for value in (EMAIL, COUPON, *distinctive):
            assert value not in page, f"{name} carries row content: {value}"
    holding = {path.relative_to(tmp_path).parts[0] for path in tmp_path.rglob("*")
               if path.is_file() and EMAIL.encode() in path.read_bytes()}
    assert "dead_letter" in holding and holding <= ROW_FOLDERS, holding
    for secret in KEYS.values():
        assert secret not in text
