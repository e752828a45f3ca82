"""Repairing export lines whose only fault is their text: bytes that are not UTF-8, lone surrogates.

orjson refuses both, so such a row would be dead-lettered whole (``invalid_json``) for one bad
character in one property. The repair replaces each bad sequence with U+FFFD, as PostHog's own
capture service does with lone surrogate escapes
(https://github.com/PostHog/posthog/blob/master/rust/capture/src/passes/invalid_surrogates.rs),
so the row migrates with exactly what PostHog would have stored. It only runs on lines that
failed to parse, never on the translate stage's fast path.
"""

from __future__ import annotations

import re

__all__ = ["repair_line"]

# One regex pass, left to right: an escaped backslash is consumed whole (so "\\ud800" stays
# text), a high+low pair of escapes is kept, and any other surrogate escape is lone.
_ESCAPES = re.compile(
    rb"\\\\|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_REPLACEMENT = rb"\ufffd"


def _escape(match: re.Match) -> bytes:
    text = match.group(0)
    if text == b"\\\\" or match.group(1):
        return text
    return _REPLACEMENT


def repair_line(line: bytes) -> bytes | None:
    """``line`` with invalid UTF-8 and lone surrogate escapes replaced by U+FFFD; None if it has
    neither (its fault, if any, lies elsewhere)."""
    try:
        line.decode("utf-8")
        text = line
    except UnicodeDecodeError:
        text = line.decode("utf-8", errors="replace").encode("utf-8")
    if b"\\u" in text:
        text = _ESCAPES.sub(_escape, text)
    return None if text == line else text
