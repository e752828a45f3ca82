"""``python -m sandbox.posthog``: the sandbox PostHog on its own, until interrupted."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import orjson

from sandbox.posthog import DROP, LOST, SLOW, PostHogCaptureServer

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.posthog",
        description="Serve a local stand-in for PostHog's /batch/ capture endpoint until "
                    "interrupted.")
    parser.add_argument("--api_key", default=os.environ.get("POSTHOG_API_KEY", "phc_sandbox"),
                        help="project API key the server accepts (default: POSTHOG_API_KEY or "
                             "phc_sandbox)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    parser.add_argument("--record_path", help="append accepted events to this JSONL file")
    parser.add_argument("--fault_rate", type=float, default=0.0,
                        help="share of requests answered with a fault (default 0)")
    parser.add_argument("--faults", default="500,503,429",
                        help="comma-separated faults to draw from: statuses, drop, slow, lost "
                             "(default 500,503,429)")
    parser.add_argument("--retry_after", default="1",
                        help="Retry-After sent with 429/503 faults (default 1)")
    parser.add_argument("--slow_seconds", type=float, default=1.0,
                        help="delay of a 'slow' fault in seconds (default 1)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the fault generator (default 0)")
    parser.add_argument("--personal_api_key",
                        default=os.environ.get("POSTHOG_PERSONAL_API_KEY", "phx_sandbox"),
                        help="personal API key the query API accepts (default: "
                             "POSTHOG_PERSONAL_API_KEY or phx_sandbox)")
    parser.add_argument("--project_id", default="1", help="project id of the query API "
                        "(default 1)")
    parser.add_argument("--quota", type=int, help="keep only this many events, then answer 200 "
                        "and keep nothing, as over PostHog's billing quota (default: no quota)")
    parser.add_argument("--drop_older_than_days", type=float, help="answer 200 but keep no "
                        "event older than this many days (default: keep all)")
    parser.add_argument("--keep_events", action="store_true", help="keep accepted events in "
                        "memory so the query API can answer (default: off, for long runs)")
    args = parser.parse_args(argv)
    kinds = tuple(int(kind) if kind.isdigit() else kind
                  for kind in (part.strip() for part in args.faults.split(",")) if kind)
    unknown = [kind for kind in kinds
               if not isinstance(kind, int) and kind not in (DROP, SLOW, LOST)]
    if unknown:
        parser.error(f"--faults: unknown fault {unknown[0]!r}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = PostHogCaptureServer(args.api_key, host=args.host, port=args.port,
                                  record_path=args.record_path, fault_rate=args.fault_rate,
                                  fault_kinds=kinds, retry_after=args.retry_after,
                                  slow_seconds=args.slow_seconds, seed=args.seed,
                                  keep_events=args.keep_events,
                                  personal_api_key=args.personal_api_key,
                                  project_id=args.project_id, quota=args.quota,
                                  drop_older_than_days=args.drop_older_than_days)
    with server:
        print(f"PostHog sandbox listening on {server.url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    print(f"Stopped: {orjson.dumps(server.stats()).decode()}", file=sys.stderr)
    return 0
