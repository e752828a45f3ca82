"""How a local run uses the machine when the user gives Beam no worker options.

Beam's DirectRunner runs a pipeline in one process unless told otherwise, so a local migration
would use one core. When the runner is the DirectRunner (named, or Beam's default when no
``--runner`` is given) and none of ``--direct_running_mode`` / ``--direct_num_workers`` is given,
the run gets ``multi_processing`` with one worker process per core, at most one per unit of work
the source makes: the DirectRunner hands whole elements to workers, and the Export API source
reads a day of hours (24 hours) per element, the files source an hour. More workers than units
would idle. A job of one unit, or a single core, stays in process, which starts about 2 s sooner.
``multi_threading`` is never chosen: the translation holds the GIL, so threads add no core.
"""

from __future__ import annotations

import os

__all__ = ["WORKER_FLAGS", "local_worker_args"]

WORKER_FLAGS = ("--direct_running_mode", "--direct_num_workers")
_DIRECT = ("directrunner", "direct", "switchingdirectrunner")


def _given(beam_args: list[str], flag: str) -> str | None:
    """The value of ``flag`` in ``beam_args`` (``--flag value`` or ``--flag=value``), or None."""
    value = None
    for index, arg in enumerate(beam_args):
        if arg == flag:
            value = beam_args[index + 1] if index + 1 < len(beam_args) else ""
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_worker_args(beam_args: list[str], units: int, cores: int | None = None) -> list[str]:
    """Beam arguments to add for a local run of ``units`` units of work (see the module
    docstring); ``[]`` to add none."""
    runner = _given(beam_args, "--runner")
    if runner is not None and runner.rsplit(".", 1)[-1].lower() not in _DIRECT:
        return []
    if any(_given(beam_args, flag) is not None for flag in WORKER_FLAGS):
        return []
    workers = min(cores if cores is not None else _cores(), units)
    if workers < 2:
        return []
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
