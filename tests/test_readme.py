"""The README documents every option with its default, and gives the two first commands."""

import argparse
from pathlib import Path

import pytest

from pipeline.options import OPTION_CLASSES

README = (Path(__file__).parent.parent / "README.md").read_text()


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
    row = next((line for line in README.splitlines() if line.startswith(f"| `{flag}")), None)
    assert row is not None, f"{flag} is missing from the README's options table"
    assert action.help in row, f"{flag}: README row disagrees with the option's help text"


def test_readme_starts_with_demo_then_test():
    commands = [line.split("#")[0].strip() for line in README.splitlines()
                if line.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"]
