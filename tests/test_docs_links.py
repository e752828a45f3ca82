"""Every relative link between README.md and the pages under docs/ leads somewhere.

A link names a file of the repository, and its ``#anchor``, if any, names a heading of the
Markdown page it points to, as GitHub turns headings into anchors.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target); targets with a scheme leave the repository.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _text(page: Path) -> str:
    return FENCE.sub("", page.read_text(encoding="utf-8"))  # code blocks hold no links


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in _text(page).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            slug = anchor(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(_text(page))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_anchor_follows_github():
    assert anchor("Creating a job interactively: `init`") == "creating-a-job-interactively-init"
    assert anchor("Mapping: Amplitude export row → PostHog event") == \
        "mapping-amplitude-export-row--posthog-event"
    assert anchor("The job's folder") == "the-jobs-folder"


def test_readme_links_every_docs_page():
    linked = {(ROOT / target).resolve() for target in links(ROOT / "README.md")}
    missing = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not missing, f"README.md's documentation map does not link {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in links(page):
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        assert destination.exists(), f"{page.name}: {target} names no file"
        assert ROOT in destination.parents or destination == ROOT, target
        if fragment:
            assert destination.suffix == ".md", f"{page.name}: {target}: anchor on a non-page"
            assert fragment in anchors(destination), f"{page.name}: {target}: no such heading"
