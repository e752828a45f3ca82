"""Amplitude's S3 export as a source, and a job folder on S3, against moto's S3 server."""

from __future__ import annotations

import gzip

import orjson
import pytest
from apache_beam.io.filesystems import FileSystems

from connectors.files import read_bytes
from tests.e2e import assert_reconciled, cli_args, make_export, run_cli, servers
from tests.s3_server import s3_bucket, s3_env  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def export():
    return make_export(120, "20240305T08", 2, seed=14)


def _upload_as_amplitude_s3_export(bucket: str, export, project: int = 187520) -> str:
    """The rows as Amplitude's S3 export writes them: <project>_<YYYY-MM-DD>_<H>#<n>.json.gz,
    the hour not zero-padded, several parts per hour."""
    import boto3  # pylint: disable=import-outside-toplevel

    client = boto3.client("s3")
    name = bucket[len("s3://"):]
    by_hour: dict[str, list[bytes]] = {}
    for hour, line in export.rows:
        by_hour.setdefault(hour, []).append(line)
    for hour, lines in by_hour.items():
        day = f"{hour[0:4]}-{hour[4:6]}-{hour[6:8]}"
        for part, first in enumerate(range(0, len(lines), 40)):
            body = gzip.compress(b"\n".join(lines[first:first + 40]) + b"\n")
            client.put_object(Bucket=name, Key=f"amplitude/{project}/{project}_{day}_"
                              f"{int(hour[9:11])}#{part}.json.gz", Body=body)
    return f"{bucket}/amplitude/{project}/*"


def test_an_s3_export_is_read_hour_by_hour(export, s3_bucket, s3_env, tmp_path):  # noqa: F811
    pattern = _upload_as_amplitude_s3_export(s3_bucket, export)
    expected = export.expected()
    _, posthog = servers(export)
    with posthog:
        code, _, err = run_cli("--start", export.start, "--end", export.end, "--work_dir",
                               str(tmp_path / "job"), "--source", "files", "--source_path",
                               pattern, "--posthog_host", posthog.url, env=s3_env)
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
        assert len(posthog.events) == len(expected)
    rep = orjson.loads((tmp_path / "job" / "report.json").read_bytes())
    assert_reconciled(rep)
    assert rep["rows_read"] == len(export.rows) and rep["hours"]["done"] == 2


def test_a_job_folder_on_s3_preserves_its_exports_and_they_replay(export, s3_bucket,  # noqa: F811
                                                                  s3_env, tmp_path):  # noqa: F811
    expected = export.expected()
    work_dir = f"{s3_bucket}/jobs/downloaded"
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, work_dir),
                               "--preserve_sources", env=s3_env)
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
    assert_reconciled(orjson.loads(read_bytes(f"{work_dir}/report.json")))
    archives = FileSystems.match([f"{work_dir}/exports/*.zip"])[0].metadata_list
    assert sorted(m.path.rsplit("/", 1)[1] for m in archives) == \
        [f"{hour}.zip" for hour in export.hours]

    _, posthog = servers(export)
    with posthog:
        code, _, err = run_cli("--start", export.start, "--end", export.end, "--work_dir",
                               str(tmp_path / "replayed"), "--source", "files", "--source_path",
                               f"{work_dir}/exports/*.zip", "--posthog_host", posthog.url,
                               env=s3_env)
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
    assert orjson.loads((tmp_path / "replayed" / "report.json").read_bytes())[
        "rows_read"] == len(export.rows)
