"""``verify``'s own flags, and how they combine with the job's.

Imported only by the ``verify`` command, so the migration's own command line does not accept
them (Beam registers every PipelineOptions subclass that has been imported).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from apache_beam.options.pipeline_options import PipelineOptions

from connectors.files import configure_gcs_emulator, exists
from connectors.posthog_query import app_host_for
from pipeline import job as jobs
from pipeline.options import SECRET_ENV, UsageError, parse_flags
from pipeline.secrets import read_secret_versions

__all__ = ["PERSONAL_KEY_ENV", "VerifyOptions", "VerifySettings", "parse_verify",
           "verify_help"]

PERSONAL_KEY_ENV = "POSTHOG_PERSONAL_API_KEY"
DEFAULT_PERSONS = 50
# Job settings verify may be given again; the job's range and translation stay as stored.
_JOB_OVERRIDES = ("posthog_host", "insecure", "max_retry_seconds", "batch_size", "quiet")


class VerifyOptions(PipelineOptions):
    """How verify reaches PostHog's query API and what it checks"""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--posthog_project_id", default=None, help="Id of the PostHog "
                            "project the job sent to (in its URL: /project/<id>). Default: "
                            "none; required.")
        parser.add_argument("--posthog_personal_api_key", default=None, help="Personal API key "
                            "with the Query Read scope on that project. Default: the "
                            f"{PERSONAL_KEY_ENV} environment variable.")
        parser.add_argument("--posthog_app_host", default=None, help="PostHog's app host, "
                            "which answers queries. Default: from --posthog_host, "
                            "us.i.posthog.com -> https://us.posthog.com, eu.i.posthog.com -> "
                            "https://eu.posthog.com, any other host as is.")
        parser.add_argument("--wait_minutes", default=None, type=float, help="Re-check short "
                            "days until they match or this many minutes have passed, as "
                            "PostHog shows historical events after a delay. Default: 0.")
        parser.add_argument("--repair", default=None, nargs="?", const=True,
                            type=lambda v: v.lower() in ("true", "1", "yes", "on"),
                            metavar="true|false", help="Re-send the events of the hours that "
                            "fed short days, then verify again. Default: off.")
        parser.add_argument("--persons", default=None, type=int, help="Compare this many "
                            "persons, picked deterministically, with the job's person snapshot; "
                            f"0 skips. Default: {DEFAULT_PERSONS}.")


def verify_help() -> str:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline verify",
        description="Count what PostHog holds of a job per day and event name, compare it with "
        "what the job sent, and repair short days. Also takes the job's --posthog_host, "
        "--posthog_api_key (for --repair), --insecure, --max_retry_seconds, --batch_size and "
        "--quiet, and Beam's options for the repair. See docs/verify.md.")
    parser.add_argument("--work_dir", help="The job's folder. Default: none; required.")
    VerifyOptions._add_argparse_args(parser.add_argument_group(VerifyOptions.__doc__))
    return parser.format_help()


@dataclass(frozen=True)
class VerifySettings:
    app_host: str
    project_id: str
    wait_minutes: float
    repair: bool
    persons: int

    personal_api_key: str = ""

    def __repr__(self) -> str:  # the key never reaches a log or a traceback
        return (f"VerifySettings({self.app_host!r}, {self.project_id!r}, "
                f"wait_minutes={self.wait_minutes}, repair={self.repair}, "
                f"persons={self.persons})")


def parse_verify(argv: list[str], environ=None
                 ) -> tuple[jobs.Job, jobs.Secrets, VerifySettings, list[str]]:
    """The job, its PostHog key (for a repair), verify's settings and the arguments for Beam."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False, exit_on_error=False)
    VerifyOptions._add_argparse_args(parser)
    try:
        own, rest = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise UsageError(f"{exc.argument_name}: {exc.message}") from None
    given, beam_args = parse_flags(rest)
    if not given.get("work_dir"):
        raise UsageError("--work_dir: required by `verify`")
    configure_gcs_emulator()
    if not exists(jobs.join(given["work_dir"], jobs.JOB_FILE)):
        raise UsageError(f"--work_dir: no job.json in {given['work_dir']}")
    stored = jobs.load_stored(given["work_dir"])
    for name in _JOB_OVERRIDES:
        if given.get(name) is not None:
            stored[name] = given[name]
    job = jobs.from_settings(stored)
    if not own.posthog_project_id:
        raise UsageError("--posthog_project_id: required by `verify` (the number in the "
                         "project's URL, /project/<id>)")
    personal = own.posthog_personal_api_key or environ.get(PERSONAL_KEY_ENV)
    if not personal:
        raise UsageError(f"--posthog_personal_api_key: required (flag or {PERSONAL_KEY_ENV}); "
                         "a personal API key with the Query Read scope")
    if own.wait_minutes is not None and own.wait_minutes < 0:
        raise UsageError("--wait_minutes: must not be negative")
    if own.persons is not None and own.persons < 0:
        raise UsageError("--persons: must not be negative")
    app_host = own.posthog_app_host or app_host_for(job.posthog_host)
    if not app_host.startswith(("http://", "https://")):
        raise UsageError(f"--posthog_app_host: expected an http(s) URL, got {app_host!r}")
    key = given.get("posthog_api_key") or environ.get(SECRET_ENV["posthog_api_key"])
    if own.repair and not key:
        raise UsageError("--posthog_api_key: required by --repair (flag or POSTHOG_API_KEY)")
    amplitude = {name: (given.get(name) or environ.get(SECRET_ENV[name])) if own.repair else None
                 for name in ("amplitude_api_key", "amplitude_secret_key")}
    keys = read_secret_versions({"posthog_api_key": key, "posthog_personal_api_key": personal,
                                 **amplitude})
    settings = VerifySettings(app_host, str(own.posthog_project_id), own.wait_minutes or 0.0,
                              bool(own.repair), DEFAULT_PERSONS if own.persons is None
                              else own.persons, keys["posthog_personal_api_key"])
    secrets = jobs.Secrets(keys["amplitude_api_key"], keys["amplitude_secret_key"],
                           keys["posthog_api_key"])
    return job, secrets, settings, beam_args
