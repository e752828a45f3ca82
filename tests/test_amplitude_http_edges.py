"""ExportClient edges over real HTTP: compressing proxies, 404s that are not "no data", timeouts."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apache_beam as beam
import pytest

from connectors.amplitude import ReadFromAmplitudeExport
from connectors.amplitude_http import ExportClient
from pipeline import job as jobs
from pipeline.build import build
from pipeline.options import UsageError, help_text, parse_flags
from sandbox.amplitude import AmplitudeExportServer
from tests.amplitude_rows import rows_for_hours
from transforms.records import DONE, EMPTY, FAILED

KEY, SECRET = "amp-key-edge", "amp-secret-edge"
HOUR, NO_DATA_HOUR = "20240305T10", "20240305T11"
FAST = dict(max_attempts=3, max_retry_seconds=10, request_timeout=5, backoff_base=0.001)


def fetch(url, hour, tmp_path):
    with ExportClient(url, KEY, SECRET, **FAST) as client:
        return client.fetch(hour, str(tmp_path / f"{hour}.zip"))


@pytest.mark.parametrize("encoding", ["gzip", "gzip-always"])
def test_a_compressing_proxy_does_not_fail_every_download(encoding, tmp_path):
    # Before: requests asked for gzip, the proxy compressed the zip, and the decompressed size
    # never matched the compressed Content-Length: every attempt failed.
    with AmplitudeExportServer(rows_for_hours({HOUR: 40}), KEY, SECRET,
                               content_encoding=encoding) as amplitude:
        result = fetch(amplitude.url, HOUR, tmp_path)
    assert (result.status, result.detail) == (DONE, None)


class _Proxy(BaseHTTPRequestHandler):
    """A web server in front of the wrong path: HTML error pages, or a redirect elsewhere."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/api/2/export") and self.server.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "/login?next=export")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = (b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
                if self.server.mode == "html" else b"Not Found")
        self.send_response(404)
        self.send_header("Content-Type", "text/html" if self.server.mode == "html"
                         else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def proxy(request):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.mode = request.param
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("proxy", ["html", "redirect"], indirect=True)
def test_a_404_that_cannot_be_amplitudes_no_data_answer_fails_the_hour(proxy, tmp_path):
    # Before: every 404 was EMPTY, so a proxy's page turned every hour empty for good.
    result = fetch(proxy, HOUR, tmp_path)
    assert result.status == FAILED
    assert "404" in result.detail and "--amplitude_url" in result.detail


def test_amplitudes_own_no_data_404_stays_empty(tmp_path):
    with AmplitudeExportServer(rows_for_hours({HOUR: 3}), KEY, SECRET) as amplitude:
        assert fetch(amplitude.url, NO_DATA_HOUR, tmp_path).status == EMPTY


def test_the_read_timeout_is_an_option_with_a_stated_default(tmp_path):
    # Before: the 300 s read timeout was fixed in code and --amplitude_read_timeout unknown.
    assert "--amplitude_read_timeout" in help_text()
    given, _ = parse_flags(["--amplitude_read_timeout", "900", "--start", "20240305T10",
                            "--end", "20240305T11", "--work_dir", str(tmp_path / "job")])
    job, secrets = jobs.resolve(given, {"AMPLITUDE_API_KEY": "a", "AMPLITUDE_SECRET_KEY": "b",
                                        "POSTHOG_API_KEY": "c"})
    assert job.amplitude_read_timeout == 900
    default, _ = jobs.resolve({k: v for k, v in given.items() if k != "amplitude_read_timeout"},
                              {"AMPLITUDE_API_KEY": "a", "AMPLITUDE_SECRET_KEY": "b",
                               "POSTHOG_API_KEY": "c"})
    assert default.amplitude_read_timeout == 300
    pipeline = beam.Pipeline()
    build(pipeline, job, secrets, [HOUR], [HOUR], "run")
    reads = [node.transform for node in pipeline.transforms_stack[0].parts
             if isinstance(node.transform, ReadFromAmplitudeExport)]
    assert [r._client_options["request_timeout"] for r in reads] == [900]
    with pytest.raises(UsageError, match="--amplitude_read_timeout"):
        jobs.resolve({**given, "amplitude_read_timeout": 0},
                     {"AMPLITUDE_API_KEY": "a", "AMPLITUDE_SECRET_KEY": "b",
                      "POSTHOG_API_KEY": "c"})
