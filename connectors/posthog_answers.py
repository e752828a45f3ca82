"""Reading PostHog's 400 answers: is a refused event at fault, or the request it came in?"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["event_problem", "refused_for_the_request"]

# PostHog's capture answers 400 for an event with no name, an empty or missing distinct_id, a
# field it cannot parse or too large a size, and for a request it cannot decode or that holds no
# event: https://github.com/PostHog/posthog/blob/master/rust/capture/src/api.rs (CaptureError).
# These words in an answer put the blame on the event ("Invalid event at index" is how the older
# Django endpoint names it).
_EVENT_PROBLEM_WORDS = ("event name", "distinct_id", "uuid", "event size", "invalid event",
                        "failed to parse", "timestamp", "properties")


def event_problem(event: Any) -> str | None:
    """What PostHog would refuse in this event on its own, or None if it looks well-formed."""
    if not isinstance(event, dict):
        return "not an object"
    if not isinstance(event.get("event"), str) or not event["event"]:
        return "no event name"
    if event.get("distinct_id") in (None, ""):
        return "no distinct_id"
    if "uuid" in event:
        try:
            uuid.UUID(str(event["uuid"]))
        except ValueError:
            return "uuid is not a UUID"
    return None


def refused_for_the_request(event: Any, answer: str) -> bool:
    """Whether a 400 for ``event`` sent alone blames the request rather than the event.

    True when the event has everything PostHog checks and the answer names no event problem:
    a proxy's error page, a body PostHog could not decode, a project-level refusal.
    """
    if event_problem(event) is not None:
        return False
    answer = answer.lower()
    return not any(word in answer for word in _EVENT_PROBLEM_WORDS)
