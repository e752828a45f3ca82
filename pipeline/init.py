"""``python -m pipeline init``: create a job by answering questions, or from flags alone.

Each question is one of the run command's flags; a flag given on the command line is not asked,
and with no terminal (CI, scripts) nothing is asked: defaults fill the rest, and a required
answer that is missing is an error naming its flag. An answer is checked as it is given, with the
run command's own parsing and validation, and a bad one is asked again with the reason. The keys
are checked against Amplitude and PostHog (``pipeline.init_checks``; ``--no_check`` skips this),
are never echoed, and are never written: ``job.json`` names the environment variables the run
reads them from.
"""

from __future__ import annotations

import getpass
import os
import shlex
import sys
from typing import Any, NamedTuple
from urllib.parse import urlparse

from connectors.amplitude import base_url_for
from connectors.files import configure_gcs_emulator, exists
from connectors.hours import hour_range, parse_hour
from pipeline import job as jobs
from pipeline.console import ERROR, OK, USAGE
from pipeline.init_checks import (ACCEPTED, REFUSED, UNREACHABLE, check_amplitude_keys,
                                  check_posthog_key)
from pipeline.options import DEFAULTS, SECRET_ENV, SECRET_FLAGS, UsageError, parse_flags
from pipeline.pacing import CLOUD_HOSTS

__all__ = ["init"]

NO_CHECK = "--no_check"
_VALUE, _SECRET, _SWITCH, _LIST = "value", "secret", "switch", "list"
# validate() insists on keys for a runnable job; init checks them live (or not, with --no_check)
# and never keeps them, so validation runs with stand-ins.
_STAND_IN_KEYS = jobs.Secrets("stand-in", "stand-in", "stand-in")
_STAND_IN_HOUR = "20240101T00"


class _Question(NamedTuple):
    name: str  # the run command's flag, without the dashes
    text: str
    kind: str = _VALUE


_QUESTIONS = {q.name: q for q in (
    _Question("start", "First hour to migrate, UTC, as YYYYMMDDTHH or YYYY-MM-DDTHH"),
    _Question("end", "Last hour to migrate, UTC, included"),
    _Question("job_name", "Job name"),
    _Question("work_dir", "Folder for the job's state and report, local or gs://"),
    _Question("source_path", "Export files to migrate: a glob, local or gs://"),
    _Question("amplitude_region", "Amplitude data region: us or eu"),
    _Question("amplitude_api_key", "Amplitude API key", _SECRET),
    _Question("amplitude_secret_key", "Amplitude secret key", _SECRET),
    _Question("posthog_host", "PostHog host"),
    _Question("posthog_api_key", "PostHog project API key", _SECRET),
    _Question("max_events_per_second", "Events per second PostHog agreed to for this migration, "
              "per worker (Enter: none agreed, send at most 10,000 a minute for the whole job)"),
    _Question("batch_size", "Events per /batch/ request"),
    _Question("sleep_interval_ms", "Pause after each batch, in milliseconds"),
    _Question("ignore_event", "Amplitude event_type to skip", _LIST),
    _Question("rename_event", "Event to rename, as SRC::DST", _LIST),
    _Question("rename_property", "Event property to rename, as SRC::DST", _LIST),
    _Question("user_properties_mode", "Where user properties go: set, root or property"),
    _Question("preserve_sources", "Keep each downloaded hour as a zip for replay", _SWITCH),
    _Question("preserve_translations", "Also write the PostHog events as Avro files", _SWITCH),
    _Question("identify_mode", "$identify events: pairs, per_file or off"),
)}


class _CheckFailed(Exception):
    """A key check said no and there is nobody to ask again."""


def _convert(name: str, text: str) -> Any:
    """An answer typed at a prompt, parsed exactly as its flag would be."""
    if _QUESTIONS[name].kind == _SWITCH:
        text = {"y": "yes", "n": "no"}.get(text.lower(), text)
    value = parse_flags([f"--{name}={text}"])[0][name]
    if name in ("start", "end"):
        try:
            value = parse_hour(value)
        except ValueError as exc:
            raise UsageError(f"--{name}: {exc}") from None
    return value


def _job(answers: dict) -> jobs.Job:
    """The job the answers so far describe, validated as the run command validates it.

    Questions not answered yet get valid stand-ins, so an error is about an answer given.
    """
    settings = {**DEFAULTS, **answers}
    settings["start"] = answers.get("start") or answers.get("end") or _STAND_IN_HOUR
    settings["end"] = answers.get("end") or settings["start"]
    settings.setdefault("job_name", None)
    settings["job_name"] = settings["job_name"] or "stand-in"
    settings["work_dir"] = answers.get("work_dir") or "stand-in"
    if settings.get("source") == "files" and not settings.get("source_path"):
        settings["source_path"] = "stand-in"
    job = jobs.from_settings(settings)
    jobs.validate(job, _STAND_IN_KEYS)
    return job


def _free_work_dir(work_dir: str, force: bool) -> None:
    configure_gcs_emulator()
    if not force and exists(jobs.join(work_dir, jobs.JOB_FILE)):
        raise UsageError(f"--work_dir: {work_dir} already holds a job (job.json); choose another "
                         "folder, or give --force to replace that job's settings")


class _Interview:
    """Fills ``answers`` (settings) and ``keys`` from flags, prompts and defaults, in order."""

    def __init__(self, given: dict, *, interactive: bool, check: bool):
        given = {k: v for k, v in given.items() if v is not None}
        self.interactive = interactive
        self.check = check
        self.force = bool(given.get("force"))
        self.keys = {name: given.pop(name, None) for name in SECRET_FLAGS}
        # Answered questions are not asked again; only prompted ones can be forgotten.
        self.done = set(given) | {name for name, key in self.keys.items() if key}
        self.prompted: set[str] = set()
        for name in ("start", "end"):
            if name in given:
                given[name] = _convert(name, str(given[name]))
        self.answers = given
        _job(self.answers)  # a wrong flag is an error before any question
        if "work_dir" in given:
            _free_work_dir(given["work_dir"], self.force)

    # -- asking ------------------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)

    def _accept(self, name: str, value: Any) -> None:
        """Keeps ``value`` if the job it makes is valid; UsageError with the reason if not."""
        candidate = {**self.answers, name: value}
        _job(candidate)
        if name == "work_dir":
            _free_work_dir(value, self.force)
        self.answers = candidate
        self.done.add(name)

    def ask(self, name: str, default: Any = None, optional: bool = False) -> None:
        """Answers ``name`` from its flag, a prompt, or ``default`` (None: required unless
        ``optional``, when no answer leaves the setting unset)."""
        if name in self.done:
            return
        if not self.interactive:
            if optional and default is None:
                return
            if default is None:
                raise UsageError(f"--{name}: required (no terminal to ask on)")
            self._accept(name, default)
            return
        question = _QUESTIONS[name]
        self.prompted.add(name)
        if question.kind == _LIST:
            return self._ask_list(question)
        shown = {True: "Y/n", False: "y/N"}.get(default) if question.kind == _SWITCH else default
        prompt = f"{question.text} (--{name})" + (f" [{shown}]" if shown is not None else "")
        while True:
            text = input(prompt + ": ").strip()
            if not text and optional and default is None:
                self.done.add(name)
                return
            try:
                if not text and default is None:
                    raise UsageError(f"--{name}: an answer is needed")
                self._accept(name, _convert(name, text) if text else default)
                return
            except UsageError as exc:
                self._say(f"  ✗ {exc}; try again.", error=True)

    def _ask_list(self, question: _Question) -> None:
        items: list[str] = []
        self._accept(question.name, items)
        while True:
            more = "; another, or" if items else ";"
            text = input(f"{question.text} (--{question.name}{more} Enter when done): ").strip()
            if not text:
                return
            try:
                self._accept(question.name, items + _convert(question.name, text))
                items = self.answers[question.name]
            except UsageError as exc:
                self._say(f"  ✗ {exc}; try again.", error=True)

    def ask_key(self, name: str) -> None:
        """A key from its flag or a prompt that does not echo, else its environment variable."""
        env = SECRET_ENV[name]
        from_env = os.environ.get(env)
        if name in self.done:
            return
        self.done.add(name)
        if self.interactive:
            self.prompted.add(name)
            hint = (f" [Enter keeps ${env}]" if from_env else
                    "" if self.check else f" [Enter: none now, export {env} later]")
            while True:
                typed = getpass.getpass(f"{_QUESTIONS[name].text} (--{name}, not shown)"
                                        f"{hint}: ").strip()
                self.keys[name] = typed or from_env
                if self.keys[name] or not self.check:
                    return
                self._say(f"  ✗ --{name}: needed for the live check (give {NO_CHECK} to skip "
                          "the checks); try again.", error=True)
        self.keys[name] = from_env
        if not self.keys[name] and self.check:
            raise UsageError(f"--{name}: needed for the live key check (the flag or {env}), or "
                             f"give {NO_CHECK}")

    def forget(self, *names: str) -> bool:
        """Forgets prompted answers so they are asked again; False if none was prompted."""
        prompted = [n for n in names if n in self.prompted]
        for name in prompted:
            self.prompted.discard(name)
            self.done.discard(name)
            self.answers.pop(name, None)
            if name in self.keys:
                self.keys[name] = None
        return bool(prompted)

    # -- the questions, in order -------------------------------------------------------------

    def run(self) -> jobs.Job:
        if self.interactive:
            self._say("A new migration job. Enter takes the [default]; nothing is written until "
                      "the last answer (Ctrl-C stops).")
        self.ask("start")
        start = self.answers["start"]
        # A script states its range; a person is shown the rest of the first day as a default.
        self.ask("end", start[:9] + "23" if self.interactive else None)
        self.ask("job_name", f"amplitude-{start}-{self.answers['end']}")
        self.ask("work_dir", os.path.join("migrations", self.answers["job_name"]))
        if self.answers.get("source", DEFAULTS["source"]) == "files":
            self.ask("source_path")
        else:
            self._amplitude()
        self._posthog()
        if urlparse(self.answers.get("posthog_host", DEFAULTS["posthog_host"])).hostname in \
                CLOUD_HOSTS:
            self.ask("max_events_per_second", optional=True)
        self.ask("batch_size", DEFAULTS["batch_size"])
        self.ask("sleep_interval_ms", DEFAULTS["sleep_interval_ms"])
        for name in ("ignore_event", "rename_event", "rename_property"):
            self.ask(name, [])
        for name in ("user_properties_mode", "preserve_sources", "preserve_translations",
                     "identify_mode"):
            self.ask(name, DEFAULTS[name])
        return _job(self.answers)

    def _amplitude(self) -> None:
        while True:
            if not self.answers.get("amplitude_url"):
                self.ask("amplitude_region", DEFAULTS["amplitude_region"])
            self.ask_key("amplitude_api_key")
            self.ask_key("amplitude_secret_key")
            if not self.check:
                return
            job = _job(self.answers)
            self._say("Checking the Amplitude keys…")
            result = check_amplitude_keys(
                base_url_for(job.amplitude_region, job.amplitude_url),
                self.keys["amplitude_api_key"], self.keys["amplitude_secret_key"], job.start)
            if result.verdict == REFUSED:
                retry = self.forget("amplitude_api_key", "amplitude_secret_key")
            elif result.verdict == UNREACHABLE:
                retry = self.forget("amplitude_region")
            else:
                return self._say(f"  {'✓' if result.verdict == ACCEPTED else '?'} "
                                 f"{result.detail}")
            self._fail("--amplitude_api_key" if result.verdict == REFUSED
                       else "--amplitude_region", result.detail, retry)

    def _posthog(self) -> None:
        while True:
            self.ask("posthog_host", DEFAULTS["posthog_host"])
            self.ask_key("posthog_api_key")
            if not self.check:
                return
            self._say("Checking the PostHog key…")
            result = check_posthog_key(self.answers.get("posthog_host", DEFAULTS["posthog_host"]),
                                       self.keys["posthog_api_key"],
                                       verify_tls=not self.answers.get("insecure"))
            if result.verdict == REFUSED:
                retry = self.forget("posthog_api_key")
            elif result.verdict == UNREACHABLE:
                retry = self.forget("posthog_host")
            else:
                return self._say(f"  {'✓' if result.verdict == ACCEPTED else '?'} "
                                 f"{result.detail}")
            self._fail("--posthog_api_key" if result.verdict == REFUSED else "--posthog_host",
                       result.detail, retry)

    def _fail(self, flag: str, detail: str, retry: bool) -> None:
        if not retry:
            raise _CheckFailed(f"{flag}: {detail} (give {NO_CHECK} to skip the checks)")
        self._say(f"  ✗ {detail}; try again.", error=True)


def _usage() -> str:
    lines = [f"usage: python -m pipeline init [{NO_CHECK}] [--force] [flags of the run command]",
             "", "Creates <work_dir>/job.json by asking, one at a time:"]
    lines += [f"  --{q.name:<22} {q.text}" for q in _QUESTIONS.values()]
    lines += ["", "A flag given is not asked; with no terminal nothing is asked. "
              f"{NO_CHECK}: do not check the keys against Amplitude and PostHog. --force: "
              "replace the job.json of an existing --work_dir. Other run flags (see python -m "
              "pipeline --help) are stored in job.json as given."]
    return "\n".join(lines)


def _summary(job: jobs.Job, beam_args: list[str]) -> str:
    env = [SECRET_ENV[n] for n in SECRET_FLAGS
           if job.source == "amplitude" or not n.startswith("amplitude")]
    hours = len(hour_range(job.start, job.end))
    command = shlex.join(["python", "-m", "pipeline", "--work_dir", job.work_dir, *beam_args])
    return "\n".join([
        f"Wrote {job.path(jobs.JOB_FILE)}: job {job.job_name}, {job.start} to {job.end} "
        f"({hours} hour{'s' if hours != 1 else ''}), to {job.posthog_host}.",
        "The keys are not stored. Export them in the shell that runs the job:",
        *(f"  export {name}=…" for name in env),
        "See what its first rows become (nothing is sent):",
        f"  {shlex.join(['python', '-m', 'pipeline', 'preview', '--work_dir', job.work_dir])}",
        "Then run the job (the same command resumes it):",
        f"  {command}",
    ])


def init(argv: list[str]) -> int:
    """Creates a job's job.json from answers and flags; prints the command that runs it."""
    argv = list(argv)
    if "-h" in argv or "--help" in argv:
        print(_usage())
        return OK
    check = NO_CHECK not in argv
    argv = [arg for arg in argv if arg != NO_CHECK]
    interactive = sys.stdin.isatty()
    try:
        given, beam_args = parse_flags(argv)
        interview = _Interview(given, interactive=interactive, check=check)
        job = interview.run()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except _CheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    except (EOFError, KeyboardInterrupt):
        print("\ninit cancelled; nothing was written.", file=sys.stderr)
        return USAGE
    jobs.save(job)
    print(_summary(job, beam_args))
    return OK
