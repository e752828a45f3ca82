"""A pytest fixture for gs:// paths: a local GCS emulator with an in-memory bucket.

Use it from a test module with ``from tests.gcs_emulator import gcs_bucket  # noqa: F401`` and
take ``gcs_bucket`` (``"gs://<bucket>"``) as a test argument. The emulator runs as a subprocess on
127.0.0.1 for the module's tests; ``STORAGE_EMULATOR_HOST`` points Beam's FileSystems at it.
``running_gcs_emulator()`` does the same as a context manager, for scripts and benchmarks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator

import pytest

from connectors.files import configure_gcs_emulator

__all__ = ["gcs_bucket", "running_gcs_emulator"]

BUCKET = "aplistorical-test"
_START_SECONDS = 30
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Real GCS percent-encodes the object name in an object's mediaLink, which Beam downloads from;
# the emulator does not, so a name with "#" (every Amplitude part: "…_13#0.json.gz") would lose its
# tail as a URL fragment and 404. The emulator runs with that one link encoded.
_LAUNCH = """
import sys
import urllib.parse
from gcp_storage_emulator import __main__ as cli
from gcp_storage_emulator.handlers import objects

_make_resource = objects._make_object_resource


def _encoded_links(base_url, bucket_name, object_name, *args, **kwargs):
    resource = _make_resource(base_url, bucket_name, object_name, *args, **kwargs)
    plain, quoted = "/o/" + object_name, "/o/" + urllib.parse.quote(object_name, safe="")
    for link in ("mediaLink", "selfLink"):
        resource[link] = resource[link].replace(plain, quoted, 1)
    return resource


objects._make_object_resource = _encoded_links
cli.main(sys.argv[1:])
"""


def _require_emulator() -> None:
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        pytest.skip("gcp-storage-emulator is not installed (pip install -e '.[test]')")


def _ready(port: int, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False  # exited: most likely the port was taken in the meantime
        try:
            with _NO_PROXY.open(f"http://127.0.0.1:{port}/", timeout=1) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_gcs_emulator(bucket: str = BUCKET) -> Iterator[str]:
    """Run the emulator with ``bucket`` created; yield ``"gs://<bucket>"``; restore the env."""
    _require_emulator()
    # The emulator's command line wants a port number, so pick a free one and retry if another
    # process grabs it before the emulator binds.
    for _ in range(3):
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "start", "--host", "127.0.0.1", "--port", str(port),
             "--in-memory", "--default-bucket", bucket, "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _ready(port, process):
            break
        _stop(process)
    else:
        raise RuntimeError("the GCS emulator did not start")
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    configure_gcs_emulator()
    try:
        yield f"gs://{bucket}"
    finally:
        _stop(process)
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="module")
def gcs_bucket() -> Iterator[str]:
    with running_gcs_emulator() as bucket:
        yield bucket
