"""Keys given as Secret Manager secret versions, read when the job is resolved.

A Flex Template launch must not carry a key, so the template's key parameters take the name of a
secret version instead (``projects/P/secrets/S/versions/V``, ``V`` may be ``latest``); flags and
the key environment variables accept the same names. The process that builds the job reads each
secret once with its own Google credentials (on Dataflow, the launcher's service account) and
hands the value to the pipeline like a key typed directly. A value is never logged or raised.
"""

from __future__ import annotations

import re
from typing import Mapping

from pipeline.options import UsageError

__all__ = ["is_secret_version", "read_secret_versions"]

_VERSION = re.compile(r"projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+")


def is_secret_version(value: str | None) -> bool:
    """Whether ``value`` names a secret version rather than being a key itself."""
    return bool(value) and _VERSION.fullmatch(value) is not None


def read_secret_versions(values: Mapping[str, str | None],
                         client=None) -> dict[str, str | None]:
    """``values`` (setting name -> key, secret version name or None) with every secret version
    name replaced by that version's value.

    ``client`` is a ``SecretManagerServiceClient``; one is made when a first name needs it, so a
    run given plain keys never imports or contacts Secret Manager. Raises UsageError naming the
    setting when a secret cannot be read.
    """
    resolved = dict(values)
    for name, value in values.items():
        if is_secret_version(value):
            client = client or _client(name)
            resolved[name] = _access(client, name, value)
    return resolved


def _client(name: str):
    try:
        from google.cloud import secretmanager  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise UsageError(f"--{name}: names a Secret Manager secret version, which needs the "
                         "google-cloud-secret-manager package (it comes with "
                         "apache-beam[gcp])") from None
    try:
        return secretmanager.SecretManagerServiceClient()
    except Exception as exc:  # most often no Google credentials on this machine
        raise UsageError(f"--{name}: cannot reach Secret Manager: {_first_line(exc)}") from None


def _access(client, name: str, version: str) -> str:
    try:
        response = client.access_secret_version(request={"name": version})
    except Exception as exc:  # not found, permission denied, disabled version, network
        raise UsageError(f"--{name}: cannot read Secret Manager secret version {version}: "
                         f"{_first_line(exc)}") from None
    try:
        # A secret stored with `echo` ends with a newline that is no part of the key.
        value = response.payload.data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--{name}: Secret Manager secret version {version} is not "
                         "UTF-8 text") from None
    if not value:
        raise UsageError(f"--{name}: Secret Manager secret version {version} is empty")
    return value


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
