"""The Amplitude keys never reach a log line, an error message, a marker or a written file."""

from __future__ import annotations

import base64
import logging
import os

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from connectors.amplitude import ReadFromAmplitudeExport
from connectors.errors import AuthenticationError
from sandbox.amplitude import AmplitudeExportServer, Fault
from tests.amplitude_rows import rows_for_hours
from transforms.records import DONE, EMPTY, FAILED, HourMarker

KEY, SECRET = "leak-check-key-31e5", "leak-check-secret-8a0c"
SECRETS = (KEY, SECRET, base64.b64encode(f"{KEY}:{SECRET}".encode()).decode())
H10, H11, H12 = "20240305T10", "20240305T11", "20240305T12"
FAST = dict(max_attempts=3, max_retry_seconds=10, request_timeout=5, backoff_base=0.001)


def is_clean(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


def assert_clean(text: str) -> None:
    assert is_clean(text)


def test_keys_stay_out_of_logs_errors_markers_and_files(tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    rows = rows_for_hours({H10: 5, H11: 5})
    preserved = tmp_path / "exports"
    with AmplitudeExportServer(rows, KEY, SECRET) as server:
        server.add_faults(Fault(status=503), Fault(truncate=True), hour=H10)
        server.add_faults(*[Fault(status=500)] * 3, hour=H11)
        with BeamTestPipeline() as p:
            out = p | ReadFromAmplitudeExport([H10, H11, H12], api_key=KEY, secret_key=SECRET,
                                              base_url=server.url, preserve_dir=str(preserved),
                                              **FAST)
            markers = out | beam.Filter(lambda e: isinstance(e, HourMarker))
            assert_that(markers | beam.Map(lambda m: (m.hour, m.status, is_clean(repr(m)))),
                        equal_to([(H10, DONE, True), (H11, FAILED, True), (H12, EMPTY, True)]))
        server.add_faults(Fault(status=401))
        with pytest.raises(AuthenticationError) as raised:
            with BeamTestPipeline() as p:
                _ = p | ReadFromAmplitudeExport([H10], api_key=KEY, secret_key=SECRET,
                                                base_url=server.url, **FAST)
    assert_clean(str(raised.value) + repr(raised.value))
    assert "Amplitude export hour 20240305T11 failed" in caplog.text
    assert_clean(caplog.text)
    captured = capfd.readouterr()
    assert_clean(captured.out + captured.err)
    assert sorted(os.listdir(preserved)) == [f"{H10}.zip"]
    for name in os.listdir(preserved):
        assert_clean((preserved / name).read_bytes().decode("latin-1"))
    transform = ReadFromAmplitudeExport([H10], api_key=KEY, secret_key=SECRET,
                                        base_url="http://127.0.0.1:1")
    assert_clean(repr(transform) + repr(vars(transform)))

