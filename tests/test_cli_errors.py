"""How the CLI ends when a run fails: one line for the user, the details in the work_dir."""

import apache_beam as beam

from connectors.errors import AuthenticationError
from pipeline import cli

ARGS = ["--start", "20240101T00", "--end", "20240101T00", "--source", "files",
        "--source_path", "/nonexistent/*.zip", "--posthog_api_key", "phc_secret_1234"]


def test_an_unexpected_failure_prints_one_line_and_keeps_the_traceback(tmp_path, monkeypatch,
                                                                       capsys):
    def explode(self, *args, **kwargs):
        raise RuntimeError("worker lost\nlong runner trace")
    monkeypatch.setattr(beam.Pipeline, "run", explode)
    code = cli.run(ARGS + ["--work_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == cli.ERROR
    assert "error: the run failed: worker lost" in err and "long runner trace" not in err
    [saved] = (tmp_path / "errors").iterdir()
    assert "Traceback" in saved.read_text() and "long runner trace" in saved.read_text()
    assert "phc_secret_1234" not in err + saved.read_text()


def test_an_abort_behind_a_runner_wrapper_is_found():
    wrapped = RuntimeError("Pipeline failed: connectors.errors.AuthenticationError: PostHog "
                           "refused the project API key (--posthog_api_key) [while running 'x']")
    assert cli.find_abort(wrapped).startswith("PostHog refused the project API key")
    inner = AuthenticationError("refused", flag="--posthog_api_key")
    try:
        try:
            raise inner
        except AuthenticationError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as outer:
        assert cli.find_abort(outer) is inner
    assert cli.find_abort(ValueError("unrelated")) is None
