"""The README is a short front door and docs/options.md documents every option with its default."""

import argparse
from pathlib import Path

import pytest

from pipeline.options import OPTION_CLASSES

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
OPTIONS = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
# The front door stays short enough to read in one go; reference belongs in docs/.
README_MAX_BYTES = 12 * 1024


def _actions():
    for cls in OPTION_CLASSES:
        parser = argparse.ArgumentParser(add_help=False)
        cls._add_argparse_args(parser)
        for action in parser._actions:
            if not action.option_strings[-1].startswith("--no_"):
                yield action


@pytest.mark.parametrize("action", list(_actions()), ids=lambda a: a.option_strings[-1])
def test_every_option_is_documented_with_its_default(action):
    flag = action.option_strings[-1]
    assert "Default" in action.help, f"{flag}: help text must state the default"
    row = next((line for line in OPTIONS.splitlines() if line.startswith(f"| `{flag}")), None)
    assert row is not None, f"{flag} is missing from the options table in docs/options.md"
    assert action.help in row, f"{flag}: docs/options.md row disagrees with the option's help text"


def test_readme_starts_with_demo_then_test():
    commands = [line.split("#")[0].strip() for line in README.splitlines()
                if line.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"]


def test_readme_is_a_front_door():
    size = len(README.encode("utf-8"))
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes: move reference text to docs/"
    first_screen = "\n".join(README.splitlines()[:60])
    assert "make demo" in first_screen and "## Migrating your own project" in first_screen


def test_migrating_starts_with_make_install_not_the_test_suite():
    section = README.split("## Migrating your own project")[1].split("\n## ")[0]
    assert "make install" in section and "make test" not in section
    assert "pipeline preview" in section
