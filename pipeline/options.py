"""Command-line options, one ``PipelineOptions`` subclass per concern.

Every flag of ours defaults to ``None`` in argparse so that the job can tell a flag the user typed
from a default: a rerun with only ``--work_dir`` takes its settings from ``job.json``, and a typed
range setting that differs from it is refused unless ``--force``. The real defaults live in
``DEFAULTS`` and every help text states them.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

DEFAULTS = {
    "source": "amplitude",
    "amplitude_region": "us",
    "amplitude_max_attempts": 8,
    "amplitude_max_retry_seconds": 900,
    "amplitude_read_timeout": 300,
    "amplitude_concurrency": 4,
    "posthog_host": "https://us.i.posthog.com",
    "batch_size": 1000,
    "sleep_interval_ms": 0,
    "max_events_per_second": None,
    "max_retry_seconds": 600,
    "ignore_event": [],
    "rename_event": [],
    "rename_property": [],
    "user_properties_mode": "set",
    "identify_mode": "pairs",
    "group_identify": True,
    "person_snapshot": True,
    "preserve_sources": False,
    "preserve_translations": False,
    "dry_run": False,
    "insecure": False,
    "force": False,
    "quiet": False,
    "limit_hours": None,
    "accept_empty": False,
}

# Flags whose values never reach job.json, a log line or the options Beam ships to workers.
SECRET_FLAGS = ("amplitude_api_key", "amplitude_secret_key", "posthog_api_key")
SECRET_ENV = {
    "amplitude_api_key": "AMPLITUDE_API_KEY",
    "amplitude_secret_key": "AMPLITUDE_SECRET_KEY",
    "posthog_api_key": "POSTHOG_API_KEY",
}
# Settings that define which rows a job covers: changing them under an existing job needs --force.
RANGE_SETTINGS = ("start", "end", "source", "source_path", "amplitude_region", "amplitude_url")


def _registered(parser, name) -> bool:
    # Beam registers every PipelineOptions subclass in one parser, and two of our contract flags
    # (--job_name, --dry_run) are also Beam flags. Beam never sees ours: parse_flags() keeps
    # our flags out of the arguments it hands to Beam.
    return f"--{name}" in getattr(parser, "_option_string_actions", {})


def _flag(parser, name, help, **kwargs):
    if _registered(parser, name):
        return
    parser.add_argument(f"--{name}", dest=name, default=None, help=help, **kwargs)


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _switch(parser, name, help):
    """A boolean: ``--name``, ``--name=true|false`` (as template launchers pass it) or
    ``--no_name``; all default to "not given"."""
    if _registered(parser, name):
        return
    parser.add_argument(f"--{name}", dest=name, nargs="?", const=True, default=None,
                        type=_boolean, metavar="true|false", help=help)
    parser.add_argument(f"--no_{name}", dest=name, action="store_const", const=False,
                        help=f"Turn off --{name}.")


class JobOptions(PipelineOptions):
    """What to migrate and where the job keeps its state."""

    @classmethod
    def _add_argparse_args(cls, parser):
        _flag(parser, "start", "First hour to migrate, UTC, inclusive: YYYYMMDDTHH or "
              "YYYY-MM-DDTHH. Required for a new job. Default: the job's job.json.")
        _flag(parser, "end", "Last hour to migrate, UTC, inclusive; same formats as --start. "
              "Required for a new job. Default: the job's job.json.")
        _flag(parser, "job_name", "Name of the migration job. Default: amplitude-<start>-<end>.")
        _flag(parser, "work_dir", "Where the job keeps job.json, the ledger, dead letters, "
              "archives and the report; local path or gs://. Default: ./migrations/<job_name>.")
        _flag(parser, "limit_hours", "Process at most N pending hours in this run (the seed's "
              "--limit). Default: no limit.", type=int)
        _switch(parser, "force", "Redo hours the ledger says are done, accept range settings "
                "that differ from job.json and migrate hours less than 48 hours old. "
                "Default: off.")
        _switch(parser, "accept_empty", "Confirm that every hour coming back empty (Amplitude "
                "has no data for them) is expected; without it such a run exits 5. "
                "Default: off.")
        _switch(parser, "dry_run", "Translate only: write events to <work_dir>/translated as "
                "Avro and send nothing. Default: off.")
        _switch(parser, "preserve_sources", "Keep each downloaded hour as "
                "<work_dir>/exports/<YYYYMMDDTHH>.zip for replay with --source files. "
                "Default: off.")
        _switch(parser, "preserve_translations", "Also write the PostHog events to "
                "<work_dir>/translated as Avro. Default: off.")
        _flag(parser, "identify_mode", "pairs: one $identify per device, with the first user "
              "seen on it, never with an id PostHog refuses to merge; per_file: Aplistorical's "
              "one $identify per user per export file; off: none. Default: pairs.",
              choices=("pairs", "per_file", "off"))
        _switch(parser, "group_identify", "Send one $groupidentify per group with its latest "
                "properties. Default: on.")
        _switch(parser, "person_snapshot", "After every event is delivered, send each person "
                "its latest properties and earliest $initial_* values as a final $set on each "
                "of its distinct_ids, so PostHog ends with Amplitude's values whatever the "
                "ingestion order. Default: on.")
        _switch(parser, "quiet", "Print only errors and the final summary (also -q). "
                "Default: off.")


class AmplitudeOptions(PipelineOptions):
    """Where the Amplitude rows come from."""

    @classmethod
    def _add_argparse_args(cls, parser):
        _flag(parser, "source", "amplitude: the Export API; files: export files at "
              "--source_path. Default: amplitude.", choices=("amplitude", "files"))
        _flag(parser, "source_path", "Glob of export files (zip, .json.gz, .json, .jsonl), "
              "local, gs:// or s3://; needed with --source files. Default: none.")
        _flag(parser, "amplitude_api_key", "Amplitude project API key. Default: the "
              "AMPLITUDE_API_KEY environment variable.")
        _flag(parser, "amplitude_secret_key", "Amplitude project secret key. Default: the "
              "AMPLITUDE_SECRET_KEY environment variable.")
        _flag(parser, "amplitude_region", "Data region of the Amplitude project: us or eu. "
              "Default: us.", choices=("us", "eu"))
        _flag(parser, "amplitude_url", "Base URL of the Export API, overriding "
              "--amplitude_region (a proxy or the sandbox). Default: none.")
        _flag(parser, "amplitude_max_attempts", "Attempts per hour for retriable failures "
              "(429, 5xx, timeouts, broken archives). Default: 8.", type=int)
        _flag(parser, "amplitude_max_retry_seconds", "Longest time spent retrying one hour "
              "before it is marked failed. Default: 900.", type=float)
        _flag(parser, "amplitude_read_timeout", "Seconds to wait for the Export API's next "
              "bytes (a large hour may take minutes before its download starts) before the "
              "attempt counts as failed and is retried. Default: 300.", type=float)
        _flag(parser, "amplitude_concurrency", "Export hours each worker downloads at once while "
              "it emits the hours already downloaded (job-wide: this × workers requests to "
              "Amplitude). Default: 4.", type=int)


class PostHogOptions(PipelineOptions):
    """Where the events go and how fast."""

    @classmethod
    def _add_argparse_args(cls, parser):
        _flag(parser, "posthog_host", "PostHog ingestion host (EU: https://eu.i.posthog.com, or "
              "your own). Default: https://us.i.posthog.com.")
        _flag(parser, "posthog_api_key", "PostHog project API key. Default: the POSTHOG_API_KEY "
              "environment variable.")
        _flag(parser, "batch_size", "Events per /batch/ request. Default: 1000.", type=int)
        _flag(parser, "sleep_interval_ms", "Pause after each batch, in milliseconds. "
              "Default: 0.", type=int)
        _flag(parser, "max_events_per_second", "Rate limit per worker (total rate = this × "
              "workers); giving it lifts the default pace to PostHog Cloud. Default: no limit, "
              "except to PostHog Cloud (us.i.posthog.com, eu.i.posthog.com): 10,000 events a "
              "minute for the whole job, as PostHog's migration guide asks.", type=float)
        _flag(parser, "max_retry_seconds", "Longest time spent retrying one batch before its "
              "events are dead-lettered as delivery_failed. Default: 600.", type=float)
        _switch(parser, "insecure", "Do not verify the PostHog host's TLS certificate. "
                "Default: off (verified).")


class TranslationOptions(PipelineOptions):
    """How Amplitude rows become PostHog events."""

    @classmethod
    def _add_argparse_args(cls, parser):
        _flag(parser, "ignore_event", "Amplitude event_type to skip; repeatable. Default: none.",
              action="append")
        _flag(parser, "rename_event", "SRC::DST renames an Amplitude event_type; repeatable. "
              "Default: none.", action="append")
        _flag(parser, "rename_property", "SRC::DST renames an event property key; repeatable. "
              "Default: none.", action="append")
        _flag(parser, "user_properties_mode", "set: user properties go to $set; root: merged "
              "into the event's properties; property: under properties.user_properties. "
              "Default: set.", choices=("set", "root", "property"))


OPTION_CLASSES = (JobOptions, AmplitudeOptions, PostHogOptions, TranslationOptions)



def _all_options_parser() -> argparse.ArgumentParser:
    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)
    return parser


def _parse(argv: list[str]) -> tuple[dict, list[str]]:
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False, exit_on_error=False)
    for cls in OPTION_CLASSES:
        cls._add_argparse_args(parser)
    # Only here, not in the options Beam registers: Beam parses sys.argv in some code paths,
    # and a short -q there would swallow a test runner's own -q.
    parser.add_argument("-q", dest="quiet", action="store_const", const=True)
    known, rest = parser.parse_known_args(argv)
    return vars(known), rest


class UsageError(ValueError):
    """A flag's value is wrong; the message starts with the flag."""


def parse_flags(argv: list[str]) -> tuple[dict, list[str]]:
    """Our flags as given (None where not given) and the arguments left for Beam.

    Raises UsageError for a flag no part of the pipeline or of Beam knows, so a typo such as
    ``--batchsize`` is an error instead of a silently ignored setting.
    """
    try:
        given, rest = _parse(argv)
    except argparse.ArgumentError as exc:
        raise UsageError(f"{exc.argument_name}: {exc.message}") from None
    _, unknown = _all_options_parser().parse_known_args(rest)
    for arg in unknown:
        if arg.startswith("-"):
            raise UsageError(f"{arg.split('=', 1)[0]}: unknown option (see --help)")
        # A stray value (``--force false`` where ``--force=false`` was meant) must not be
        # handed to Beam and silently ignored.
        raise UsageError(f"{arg}: unexpected value; switches take --name=true|false")
    return given, rest


def help_text() -> str:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Migrate Amplitude history to PostHog. Subcommands: init, preview, status, "
        "resend, verify. "
        "Beam's own options (--runner, --direct_num_workers, --project, ...) pass through.")
    for cls in OPTION_CLASSES:
        group = parser.add_argument_group(cls.__doc__)
        cls._add_argparse_args(group)
    return parser.format_help()
