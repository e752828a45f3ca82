"""A pytest fixture for s3:// paths: moto's S3 server on 127.0.0.1, started for the module.

Take ``s3_bucket`` (``"s3://<bucket>"``) as a test argument; ``s3_env`` holds what a process
needs to reach it through the standard AWS chain (credentials and ``AWS_ENDPOINT_URL_S3``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from typing import Iterator

import pytest

__all__ = ["s3_bucket", "s3_env"]

BUCKET = "aplistorical-s3-test"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(port: int, process: subprocess.Popen, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with _NO_PROXY.open(f"http://127.0.0.1:{port}/", timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    server = shutil.which("moto_server", path=os.path.dirname(os.sys.executable))
    if server is None:
        pytest.skip("moto's server is not installed (pip install -e '.[test]')")
    port = _free_port()
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _ready(port, process):
            raise RuntimeError("moto's S3 server did not start")
        env = {"AWS_ACCESS_KEY_ID": "aplistorical-test", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
               "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}
        previous = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_bucket(s3_env) -> str:  # pylint: disable=redefined-outer-name
    import boto3  # pylint: disable=import-outside-toplevel

    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL_S3"]).create_bucket(Bucket=BUCKET)
    return f"s3://{BUCKET}"
