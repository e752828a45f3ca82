"""Keys given as Secret Manager secret versions: read once the flags are valid, never shown.

A fake client stands in for Secret Manager (the only call made is access_secret_version, whose
request and response shapes are those of google-cloud-secret-manager); nothing leaves the
machine.
"""

import logging
import sys
from types import SimpleNamespace

import orjson
import pytest

from pipeline import job as jobs
from pipeline.options import UsageError, parse_flags
from pipeline.secrets import is_secret_version, read_secret_versions

POSTHOG = "projects/acme/secrets/posthog-api-key/versions/latest"
AMP_KEY = "projects/123456/secrets/amplitude_key/versions/3"
AMP_SECRET = "projects/123456/secrets/amplitude_secret/versions/4"
VALUES = {POSTHOG: b"phc_from_secret_manager_0123456789\n", AMP_KEY: b"amp-key-from-sm",
          AMP_SECRET: b"amp-secret-from-sm"}


class FakeSecretManager:
    """Answers access_secret_version like SecretManagerServiceClient, from a dict."""

    def __init__(self, values, error=None):
        self.values, self.error, self.requests = values, error, []

    def access_secret_version(self, request):
        self.requests.append(request["name"])
        if self.error is not None:
            raise self.error
        return SimpleNamespace(payload=SimpleNamespace(data=self.values[request["name"]]))


def resolve(argv, environ, client):
    given, _ = parse_flags(argv)
    return jobs.resolve(given, environ, secret_client=client)


def job_argv(tmp_path, *extra):
    return ["--start", "20240101T00", "--end", "20240101T01", "--work_dir", str(tmp_path),
            *extra]


def test_secret_version_names_are_told_from_keys():
    assert is_secret_version(POSTHOG) and is_secret_version(AMP_KEY)
    for value in (None, "", "phc_0123456789abcdef", "projects/p/secrets/s",
                  "projects/p/secrets/s/versions/", f" {POSTHOG}", f"{POSTHOG}/x",
                  "projects/p q/secrets/s/versions/1"):
        assert not is_secret_version(value), value


def test_flags_and_environment_name_secret_versions(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    client = FakeSecretManager(VALUES)
    job, secrets = resolve(job_argv(tmp_path, "--posthog_api_key", POSTHOG),
                           {"AMPLITUDE_API_KEY": AMP_KEY, "AMPLITUDE_SECRET_KEY": AMP_SECRET},
                           client)
    assert secrets.posthog_api_key == "phc_from_secret_manager_0123456789"  # newline stripped
    assert secrets.amplitude_api_key == "amp-key-from-sm"
    assert secrets.amplitude_secret_key == "amp-secret-from-sm"
    assert sorted(client.requests) == sorted(VALUES)
    jobs.save(job)
    shown = caplog.text + repr(secrets) + repr(job) + (tmp_path / jobs.JOB_FILE).read_text()
    for value in VALUES.values():
        assert value.strip().decode() not in shown


def test_plain_keys_never_touch_secret_manager(tmp_path, monkeypatch):
    # Not even an import: a machine without the package runs with plain keys.
    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager", None)
    keys = {"AMPLITUDE_API_KEY": "a", "AMPLITUDE_SECRET_KEY": "b", "POSTHOG_API_KEY": "c"}
    _, secrets = jobs.resolve(parse_flags(job_argv(tmp_path))[0], keys)
    assert (secrets.amplitude_api_key, secrets.amplitude_secret_key,
            secrets.posthog_api_key) == ("a", "b", "c")


def test_a_bad_flag_is_reported_before_any_secret_is_read(tmp_path):
    client = FakeSecretManager(VALUES)
    with pytest.raises(UsageError, match="^--batch_size"):
        resolve(job_argv(tmp_path, "--batch_size", "0", "--posthog_api_key", POSTHOG,
                         "--amplitude_api_key", AMP_KEY, "--amplitude_secret_key", AMP_SECRET),
                {}, client)
    assert client.requests == []


@pytest.mark.parametrize("error, data, message", [
    (PermissionError("403 Permission 'secretmanager.versions.access' denied"), None,
     "cannot read Secret Manager secret version .*: 403 Permission"),
    (None, b"  \n", "is empty"),
    (None, b"\xff\xfe", "is not UTF-8 text"),
])
def test_an_unreadable_secret_names_its_flag_and_shows_no_other_key(tmp_path, error, data,
                                                                    message):
    values = {**VALUES, POSTHOG: data}
    client = FakeSecretManager(values, error=error)
    environ = {"AMPLITUDE_API_KEY": "plain-amp-key-42", "AMPLITUDE_SECRET_KEY": "plain-sec-43"}
    with pytest.raises(UsageError, match=f"^--posthog_api_key: .*{message}") as err:
        resolve(job_argv(tmp_path, "--posthog_api_key", POSTHOG), environ, client)
    # No chained exception either: a traceback would show the failed call's details.
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__
    for value in environ.values():
        assert value not in str(err.value)


def test_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager", None)
    with pytest.raises(UsageError, match="^--posthog_api_key: .*google-cloud-secret-manager"):
        read_secret_versions({"posthog_api_key": POSTHOG})


def test_one_client_serves_every_secret(monkeypatch):
    made = []

    class Client(FakeSecretManager):
        def __init__(self):
            super().__init__(VALUES)
            made.append(self)

    monkeypatch.setattr("google.cloud.secretmanager.SecretManagerServiceClient", Client)
    resolved = read_secret_versions({"posthog_api_key": POSTHOG, "amplitude_api_key": AMP_KEY,
                                     "amplitude_secret_key": None})
    assert len(made) == 1 and len(made[0].requests) == 2
    assert resolved == {"posthog_api_key": "phc_from_secret_manager_0123456789",
                        "amplitude_api_key": "amp-key-from-sm", "amplitude_secret_key": None}
    assert orjson.dumps(resolved)  # plain strings, as the pipeline's steps receive them
