"""The sandbox Export API behaves like Amplitude's where the source depends on it."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor

import requests

from sandbox.amplitude import AmplitudeExportServer, Fault
from tests.amplitude_rows import lines_of, rows_for_hours

KEY, SECRET = "sandbox-key", "sandbox-secret"
H10, H11, H12 = "20240305T10", "20240305T11", "20240305T12"
ROWS = rows_for_hours({H10: 4, H11: 3})


def export(server, start, end=None, auth=(KEY, SECRET)):
    return requests.get(f"{server.url}/api/2/export", params={"start": start, "end": end or start},
                        auth=auth, timeout=10)


def lines_in(body: bytes) -> dict[str, list[bytes]]:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        return {name: gzip.decompress(zf.read(name)).splitlines() for name in zf.namelist()}


def test_both_ends_of_the_range_are_included():
    with AmplitudeExportServer(ROWS, KEY, SECRET, part_rows=10) as server:
        one, both = export(server, H10), export(server, H10, H11)
    assert one.status_code == 200 and both.status_code == 200
    assert one.headers["Content-Type"] == "application/zip"
    assert sum(len(v) for v in lines_in(one.content).values()) == 4
    assert sorted(l for v in lines_in(both.content).values() for l in v) == sorted(lines_of(ROWS))


def test_parts_are_named_as_amplitude_names_them():
    rows = rows_for_hours({"20240305T07": 5})
    with AmplitudeExportServer(rows, KEY, SECRET, part_rows=2) as server:
        members = lines_in(export(server, "20240305T07").content)
    app = rows[0]["app"]
    assert sorted(members) == [f"{app}/{app}_2024-03-05_7#{n}.json.gz" for n in range(3)]
    assert [len(members[f"{app}/{app}_2024-03-05_7#{n}.json.gz"]) for n in range(3)] == [2, 2, 1]


def test_statuses_for_auth_empty_and_too_large():
    with AmplitudeExportServer(ROWS, KEY, SECRET, max_export_bytes=3 * 1024) as server:
        assert export(server, H11, auth=(KEY, "nope")).status_code == 401
        assert export(server, H12).status_code == 404
        assert export(server, H10).status_code == 400  # 4 rows of ~1.6 kB
        server.max_export_bytes = None
        assert export(server, H10).status_code == 200
        assert export(server, "2024-03-05T10").status_code == 400  # malformed hour
        assert server.request_count(H11) == 1 and server.request_count(H10) == 2


def test_faults_are_taken_per_hour_first_then_from_the_general_queue():
    with AmplitudeExportServer(ROWS, KEY, SECRET) as server:
        server.add_faults(Fault(status=503, retry_after="2"), Fault(status=429))
        server.add_faults(Fault(status=504), hour=H11)
        first = export(server, H11)
        assert first.status_code == 504
        second = export(server, H10)
        assert second.status_code == 503 and second.headers["Retry-After"] == "2"
        assert export(server, H11).status_code == 429
        assert export(server, H11).status_code == 200
        server.add_faults(Fault(status=500))
        server.clear_faults()
        assert export(server, H11).status_code == 200


def test_truncated_dropped_and_corrupt_bodies():
    with AmplitudeExportServer(ROWS, KEY, SECRET) as server:
        good = export(server, H10).content
        server.add_faults(Fault(truncate=True), Fault(drop=True), Fault(corrupt=True))
        for expected_error in (requests.exceptions.ChunkedEncodingError,
                               requests.exceptions.ConnectionError):
            try:
                export(server, H10)
            except expected_error:
                pass
            else:
                raise AssertionError(f"expected {expected_error.__name__}")
        corrupt = export(server, H10).content
    assert len(corrupt) == len(good) and corrupt != good


def test_serves_concurrent_requests():
    rows = rows_for_hours({f"20240305T{h:02d}": 20 for h in range(12)})
    with AmplitudeExportServer(rows, KEY, SECRET, part_rows=7) as server:
        server.add_faults(Fault(slow=0.2), hour="20240305T00")
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda h: export(server, f"20240305T{h:02d}"), range(12)))
    assert [r.status_code for r in replies] == [200] * 12
    assert all(sum(len(v) for v in lines_in(r.content).values()) == 20 for r in replies)


def test_runs_standalone(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b"\n".join(lines_of(ROWS)) + b"\n{not json\n")
    helped = subprocess.run([sys.executable, "-m", "sandbox.amplitude", "--help"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert "--rows" in helped.stdout
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.amplitude", "--rows", str(rows), "--api-key", KEY,
         "--secret-key", SECRET, "--fail-first", "503"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()
        assert "1 lines without a server_upload_time left out" in banner
        url = banner.split(" at ")[1].split()[0]
        params = {"start": H10, "end": H10}
        first = requests.get(f"{url}/api/2/export", params=params, auth=(KEY, SECRET), timeout=10)
        second = requests.get(f"{url}/api/2/export", params=params, auth=(KEY, SECRET), timeout=10)
        assert (first.status_code, second.status_code) == (503, 200)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert process.returncode == 0 and errors == ""


def test_rows_given_with_their_hour_may_be_bad_json():
    with AmplitudeExportServer([(H10, b"{not json"), (H10, b'{"a":1}')], KEY, SECRET) as server:
        assert sorted(l for v in lines_in(export(server, H10).content).values() for l in v) == [
            b"{\"a\":1}", b"{not json"]
    try:
        AmplitudeExportServer([b"{not json"], KEY, SECRET)
    except ValueError as error:
        assert "(hour, line)" in str(error)
    else:
        raise AssertionError("a bad line without its hour was accepted")
