"""What every command of ``python -m pipeline`` shares: exit codes, logging, aborts.

``pipeline.cli`` (the run command and the dispatch), ``pipeline.commands`` (``status``,
``resend``) and ``pipeline.init`` all import from here, and none of them from another, so the
entry points form no import circle.

Exit codes: 0 every hour done or empty and nothing left undelivered; 2 a flag is wrong, or hours
under 48 hours old without ``--force`` (nothing ran); 3 an hour failed or events await ``resend``
(rerun or resend); 1 an authentication or configuration error found while running; 4 nothing
failed but hours are left pending (``--limit_hours``, hours Amplitude cannot export yet, empty
hours to check again): rerun later; 5 every hour came back empty and ``--accept_empty`` was not
given; 130 stopped by Ctrl-C (rerun to resume).
"""

from __future__ import annotations

import logging
import re
import sys

from connectors.errors import MigrationAbort

OK, ERROR, USAGE, INCOMPLETE, HOURS_PENDING, ALL_EMPTY = 0, 1, 2, 3, 4, 5
INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C (128 + SIGINT)
# Where a worker's forwarded log line was logged, as its text gives it.
_LOG_LOCATION = re.compile(r'log_location: "([^"]*)"')


def setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    # Beam's own INFO lines (bundle and runner chatter) drown the migration's.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Worker processes (the local multi_processing mode, see pipeline.local_mode) forward their
    # log lines through this logger. Beam's own worker start-up warns about things that do not
    # apply here (a __main__ session this program does not use, launcher-only flags); lines
    # logged by the migration's code in a worker still come through.
    logging.getLogger("apache_beam.runners.portability.local_job_service").addFilter(
        _not_from_beam_itself)


def _not_from_beam_itself(record: logging.LogRecord) -> bool:
    match = _LOG_LOCATION.search(record.getMessage())
    return not (match and "/apache_beam/" in match.group(1))


def find_abort(exc: BaseException) -> MigrationAbort | str | None:
    """The MigrationAbort behind a pipeline failure, or its message when a runner re-raised it
    as text (runners wrap worker exceptions, some only as a string)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MigrationAbort):
            return exc
        for name in ("AuthenticationError", "MigrationAbort"):
            text = str(exc)
            if f"{name}: " in text:
                return text.split(f"{name}: ", 1)[1].splitlines()[0].strip(" '\"")
        exc = exc.__cause__ or exc.__context__
    return None
