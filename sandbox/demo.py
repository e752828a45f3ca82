"""``make demo``: a whole migration between the local sandbox servers, no account needed.

Generates a realistic export (web and mobile, anonymous and identified users, a few bad rows),
serves it from the sandbox Amplitude Export API, previews its first rows with ``python -m pipeline
preview``, runs ``python -m pipeline`` against it and the sandbox PostHog capture server, prints
the report, then checks with ``verify`` what the sandbox PostHog holds through its query API.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import time

from connectors.hours import hour_start, parse_hour
from sandbox.amplitude import AmplitudeExportServer
from sandbox.generate import generate_rows_by_hour
from sandbox.posthog import PostHogCaptureServer

# Sandbox credentials: the local servers accept only these, and they open nothing else.
DEMO_KEYS = {"AMPLITUDE_API_KEY": "demo-amplitude-key",
             "AMPLITUDE_SECRET_KEY": "demo-amplitude-secret",
             "POSTHOG_API_KEY": "phc_demo_project_key",
             "POSTHOG_PERSONAL_API_KEY": "phx_demo_personal_key"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="Rows to generate. "
                        "Default: 50000.")
    parser.add_argument("--start", default="20240301T00", help="First hour. Default: "
                        "20240301T00.")
    parser.add_argument("--hours", type=int, default=24, help="Hours of data. Default: 24.")
    parser.add_argument("--seed", type=int, default=7, help="Generator seed. Default: 7.")
    parser.add_argument("--out", default="demo-output", help="Folder for the job and what the "
                        "sandbox PostHog received; emptied first. Default: demo-output.")
    args, pipeline_args = parser.parse_known_args(argv)

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    start = parse_hour(args.start)
    end = (hour_start(start) + dt.timedelta(hours=args.hours - 1)).strftime("%Y%m%dT%H")
    began = time.monotonic()
    rows = list(generate_rows_by_hour(args.rows, start, args.hours, seed=args.seed))
    print(f"Generated {len(rows):,} Amplitude export rows over {args.hours} hours "
          f"({time.monotonic() - began:.1f} s).")
    received = os.path.join(args.out, "posthog_received.jsonl")
    amplitude = AmplitudeExportServer(rows, api_key=DEMO_KEYS["AMPLITUDE_API_KEY"],
                                      secret_key=DEMO_KEYS["AMPLITUDE_SECRET_KEY"])
    posthog = PostHogCaptureServer(DEMO_KEYS["POSTHOG_API_KEY"], record_path=received,
                                   personal_api_key=DEMO_KEYS["POSTHOG_PERSONAL_API_KEY"])
    with amplitude, posthog:
        job = ["--start", start, "--end", end, "--job_name", "demo",
               "--work_dir", os.path.join(args.out, "job"),
               "--amplitude_url", amplitude.url, "--posthog_host", posthog.url, *pipeline_args]
        print("Sandbox Amplitude Export API:", amplitude.url)
        print("Sandbox PostHog capture:     ", posthog.url)
        # What a user does first: look at what the first rows become, then migrate.
        for command in ([sys.executable, "-m", "pipeline", "preview", "--rows", "200", *job],
                        [sys.executable, "-m", "pipeline", "--runner", "DirectRunner", *job]):
            print("$", " ".join(command), "   # keys come from the environment")
            code = subprocess.call(command, env={**os.environ, **DEMO_KEYS})
            if code:
                break
        print(f"The sandbox PostHog accepted {len(posthog.events):,} events "
              f"({posthog.duplicates:,} duplicates by uuid), saved in {received}.")
        if code != 0:
            return code
        # Then ask the sandbox's query API what it holds, as a user would ask PostHog.
        verify = [sys.executable, "-m", "pipeline", "verify", "--work_dir",
                  os.path.join(args.out, "job"), "--posthog_project_id", posthog.project_id]
        print("$", " ".join(verify), "   # the personal API key comes from the environment")
        code = subprocess.call(verify, env={**os.environ, **DEMO_KEYS})
    return code


if __name__ == "__main__":
    sys.exit(main())
