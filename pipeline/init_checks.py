"""Live checks of the keys ``init`` is given, one cheap request to each service.

Amplitude: the Export API itself, for one hour of the job (the request the job will make first).
Its status arrives before the zip, so the body is never read: 200 (data) and 404 (no data) both
mean the keys were accepted, and so does 400 (the hour is over the 4 GB limit: checked after the
keys). 401 and 403 mean they were not.

PostHog: the capture endpoint (``/batch/``) checks only that a key has the form of one, and
answers 200 to a well-formed key of no project; events sent with it are dropped later. The
feature-flag endpoint (``/decide/``) looks the project up and answers 401 for an unknown key, so
it is asked first. Hosts that do not serve it (a proxy in front of capture only) get an empty
``/batch/`` instead, which catches only a malformed key; the result says which check was made.
"""

from __future__ import annotations

from typing import NamedTuple

import requests

__all__ = ["ACCEPTED", "REFUSED", "UNCHECKED", "UNREACHABLE", "KeyCheck",
           "check_amplitude_keys", "check_posthog_key"]

ACCEPTED, REFUSED = "accepted", "refused"
UNREACHABLE = "unreachable"  # no HTTP answer at all: the host or region is likely wrong
UNCHECKED = "unchecked"  # an answer that says nothing about the keys (429, 5xx, slow export)

_CONNECT_TIMEOUT = 10.0
_CHECK_DISTINCT_ID = "aplistorical-init-key-check"


class KeyCheck(NamedTuple):
    verdict: str  # ACCEPTED, REFUSED, UNREACHABLE or UNCHECKED
    detail: str  # one sentence for the person at the terminal; never contains a key


def _unreachable(base: str, exc: requests.RequestException) -> KeyCheck:
    # Only the exception's type: its text can quote the request, and requests' text for a
    # refused connection is long enough to bury the question being asked.
    return KeyCheck(UNREACHABLE, f"could not reach {base} ({type(exc).__name__})")


def check_amplitude_keys(base_url: str, api_key: str, secret_key: str, hour: str, *,
                         timeout: float = 60.0) -> KeyCheck:
    """Ask the Export API for ``hour`` (YYYYMMDDTHH) with the keys; read only the status."""
    base = base_url.rstrip("/")
    try:
        with requests.get(f"{base}/api/2/export", params={"start": hour, "end": hour},
                          auth=(api_key, secret_key), stream=True,
                          timeout=(_CONNECT_TIMEOUT, timeout)) as response:
            code = response.status_code
    except requests.exceptions.ReadTimeout:
        # Amplitude answers only once the hour's export is built, which can take a while.
        return KeyCheck(UNCHECKED, f"Amplitude did not answer within {timeout:g} s")
    except requests.RequestException as exc:
        return _unreachable(base, exc)
    if code in (200, 400, 404):
        return KeyCheck(ACCEPTED, f"Amplitude accepted the keys ({base}, HTTP {code} for "
                                  f"hour {hour})")
    if code in (401, 403):
        return KeyCheck(REFUSED, f"Amplitude refused the API key and secret key (HTTP {code} "
                                 f"from {base}); check both keys and the project's data region")
    return KeyCheck(UNCHECKED, f"Amplitude answered HTTP {code}, which says nothing about the "
                               "keys")


def check_posthog_key(host: str, api_key: str, *, timeout: float = 30.0,
                      verify_tls: bool = True) -> KeyCheck:
    """Ask ``/decide/`` whether ``host`` knows the project key; fall back to an empty batch."""
    base = host.rstrip("/")
    refused = ("PostHog refused the project API key (HTTP {code} from {base}{path}); copy it "
               "from the project's settings (it starts with phc_)")
    try:
        with requests.Session() as session:
            session.verify = verify_tls
            decide = session.post(f"{base}/decide/", params={"v": "3"},
                                  json={"api_key": api_key, "distinct_id": _CHECK_DISTINCT_ID},
                                  timeout=(_CONNECT_TIMEOUT, timeout))
            if decide.status_code in (401, 403):
                return KeyCheck(REFUSED, refused.format(code=decide.status_code, base=base,
                                                        path="/decide/"))
            if decide.status_code == 200:
                return KeyCheck(ACCEPTED, f"PostHog knows this project key ({base})")
            batch = session.post(f"{base}/batch/", json={"api_key": api_key, "batch": []},
                                 timeout=(_CONNECT_TIMEOUT, timeout))
    except requests.RequestException as exc:
        return _unreachable(base, exc)
    code = batch.status_code
    if code in (401, 403):
        return KeyCheck(REFUSED, refused.format(code=code, base=base, path="/batch/"))
    if code == 200 or code == 400:  # 400: an empty batch; the key itself passed
        return KeyCheck(ACCEPTED, f"PostHog's capture endpoint accepted the key ({base}); it "
                                  "checks only a key's form, so make sure it is this project's")
    return KeyCheck(UNCHECKED, f"PostHog answered HTTP {code}, which says nothing about the key")
