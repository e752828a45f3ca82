"""A migration job: its settings resolved from flags, job.json and the environment.

``job.json`` holds every setting except secrets; the keys are read from flags or the environment
at each run. A rerun with only ``--work_dir`` therefore resumes the job exactly as it was started.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

import orjson

from connectors.amplitude import parse_hour
from connectors.files import exists, read_bytes, write_atomically
from pipeline.options import DEFAULTS, RANGE_SETTINGS, SECRET_ENV, SECRET_FLAGS, UsageError
from pipeline.secrets import read_secret_versions
from transforms.settings import TranslationSettings

JOB_FILE = "job.json"


@dataclass(frozen=True)
class Job:
    """Resolved settings of a job (no secrets; see ``Secrets``)."""

    start: str
    end: str
    job_name: str
    work_dir: str
    source: str = DEFAULTS["source"]
    source_path: str | None = None
    amplitude_region: str = DEFAULTS["amplitude_region"]
    amplitude_url: str | None = None
    amplitude_max_attempts: int = DEFAULTS["amplitude_max_attempts"]
    amplitude_max_retry_seconds: float = DEFAULTS["amplitude_max_retry_seconds"]
    amplitude_read_timeout: float = DEFAULTS["amplitude_read_timeout"]
    amplitude_concurrency: int = DEFAULTS["amplitude_concurrency"]
    posthog_host: str = DEFAULTS["posthog_host"]
    batch_size: int = DEFAULTS["batch_size"]
    sleep_interval_ms: int = DEFAULTS["sleep_interval_ms"]
    max_events_per_second: float | None = DEFAULTS["max_events_per_second"]
    max_retry_seconds: float = DEFAULTS["max_retry_seconds"]
    ignore_event: tuple[str, ...] = ()
    rename_event: tuple[str, ...] = ()
    rename_property: tuple[str, ...] = ()
    user_properties_mode: str = DEFAULTS["user_properties_mode"]
    identify_mode: str = DEFAULTS["identify_mode"]
    group_identify: bool = DEFAULTS["group_identify"]
    person_snapshot: bool = DEFAULTS["person_snapshot"]
    preserve_sources: bool = False
    preserve_translations: bool = False
    insecure: bool = False
    # Per-run switches: never stored in job.json.
    dry_run: bool = field(default=False, compare=False)
    force: bool = field(default=False, compare=False)
    quiet: bool = field(default=False, compare=False)
    limit_hours: int | None = field(default=None, compare=False)
    accept_empty: bool = field(default=False, compare=False)

    PER_RUN = ("dry_run", "force", "quiet", "limit_hours", "accept_empty")

    def stored(self) -> dict:
        """What job.json holds: every setting but the per-run switches."""
        data = {k: v for k, v in asdict(self).items() if k not in self.PER_RUN}
        data["secrets_from_environment"] = dict(SECRET_ENV)
        return data

    def translation_settings(self) -> TranslationSettings:
        return TranslationSettings.from_flags(
            ignore_event=self.ignore_event, rename_event=self.rename_event,
            rename_property=self.rename_property,
            user_properties_mode=self.user_properties_mode, import_job_id=self.job_name)

    def path(self, *parts: str) -> str:
        return join(self.work_dir, *parts)


@dataclass(frozen=True)
class Secrets:
    amplitude_api_key: str | None
    amplitude_secret_key: str | None
    posthog_api_key: str | None

    def __repr__(self) -> str:  # a Secrets in a traceback or log must not show the keys
        return "Secrets(<redacted>)"


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def resolve(given: dict, environ: dict | None = None,
            secret_client=None) -> tuple[Job, Secrets]:
    """Merge typed flags over the job's job.json (when the work_dir has one) and defaults.

    Keys given as Secret Manager secret versions are read last, once every flag is known to be
    valid, with ``secret_client`` when given (see pipeline.secrets).
    """
    environ = os.environ if environ is None else environ
    given = {k: v for k, v in given.items() if v is not None}
    keys = {name: given.pop(name, None) or environ.get(SECRET_ENV[name]) for name in SECRET_FLAGS}
    secrets = Secrets(**keys)
    for name in ("start", "end"):
        if name in given:
            given[name] = _hour(name, given[name])

    work_dir = given.get("work_dir")
    if not work_dir:
        if not ("start" in given and "end" in given) and not given.get("job_name"):
            raise UsageError("--start: required for a new job (or give --work_dir of an "
                             "existing job to resume it)")
        name = given.get("job_name") or f"amplitude-{given['start']}-{given['end']}"
        work_dir = os.path.join("migrations", name)
    stored = load_stored(work_dir)
    if stored:
        conflicts = [k for k in RANGE_SETTINGS
                     if k in given and given[k] != stored.get(k)]
        if conflicts and not given.get("force"):
            flags = ", ".join(f"--{k}" for k in conflicts)
            raise UsageError(f"{flags.split(',')[0]}: differs from this job's job.json "
                             f"({flags}); rerun with --force to change the job's range, or "
                             "use a new --work_dir")
    merged = {**DEFAULTS, **(stored or {}), **given, "work_dir": work_dir}
    if not merged.get("start") or not merged.get("end"):
        missing = "start" if not merged.get("start") else "end"
        raise UsageError(f"--{missing}: required for a new job")
    merged.setdefault("job_name", None)
    merged["job_name"] = merged["job_name"] or f"amplitude-{merged['start']}-{merged['end']}"
    job = from_settings(merged)
    validate(job, secrets)
    return job, Secrets(**read_secret_versions(keys, secret_client))


def from_settings(settings: dict) -> Job:
    """A Job from stored or merged settings (lists from JSON become tuples)."""
    data = {k: v for k, v in settings.items() if k in Job.__dataclass_fields__}
    for name in ("ignore_event", "rename_event", "rename_property"):
        data[name] = tuple(data.get(name) or ())
    return Job(**data)


def _hour(flag: str, value: str) -> str:
    try:
        return parse_hour(value)
    except ValueError:
        raise UsageError(f"--{flag}: expected an hour as YYYYMMDDTHH or YYYY-MM-DDTHH, "
                         f"got {value!r}") from None


def validate(job: Job, secrets: Secrets) -> None:
    """Raise UsageError naming the first flag whose value cannot work."""
    if job.start > job.end:
        raise UsageError(f"--end: {job.end} is before --start {job.start}")
    if job.source == "files" and not job.source_path:
        raise UsageError("--source_path: required with --source files")
    for flag, value in (("batch_size", job.batch_size),
                        ("amplitude_max_attempts", job.amplitude_max_attempts),
                        ("amplitude_concurrency", job.amplitude_concurrency)):
        if value < 1:
            raise UsageError(f"--{flag}: must be at least 1, got {value}")
    for flag, value in (("sleep_interval_ms", job.sleep_interval_ms),
                        ("max_retry_seconds", job.max_retry_seconds),
                        ("amplitude_max_retry_seconds", job.amplitude_max_retry_seconds)):
        if value < 0:
            raise UsageError(f"--{flag}: must not be negative, got {value}")
    if job.amplitude_read_timeout <= 0:
        raise UsageError(f"--amplitude_read_timeout: must be positive, got "
                         f"{job.amplitude_read_timeout}")
    if job.max_events_per_second is not None and job.max_events_per_second <= 0:
        raise UsageError("--max_events_per_second: must be positive")
    if job.limit_hours is not None and job.limit_hours < 1:
        raise UsageError("--limit_hours: must be at least 1")
    for flag in ("posthog_host", "amplitude_url"):
        url = getattr(job, flag)
        if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
            raise UsageError(f"--{flag}: expected an http(s) URL, got {url!r}")
    try:
        job.translation_settings()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if job.source == "amplitude" and not (secrets.amplitude_api_key and
                                          secrets.amplitude_secret_key):
        raise UsageError("--amplitude_api_key: Amplitude API and secret keys are required with "
                         "--source amplitude (flags or AMPLITUDE_API_KEY / AMPLITUDE_SECRET_KEY)")
    if not job.dry_run and not secrets.posthog_api_key:
        raise UsageError("--posthog_api_key: required unless --dry_run (flag or POSTHOG_API_KEY)")


def load_stored(work_dir: str) -> dict | None:
    path = join(work_dir, JOB_FILE)
    if not exists(path):
        return None
    return orjson.loads(read_bytes(path))


def save(job: Job) -> None:
    write_atomically(job.path(JOB_FILE), orjson.dumps(job.stored(), option=orjson.OPT_INDENT_2))


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
