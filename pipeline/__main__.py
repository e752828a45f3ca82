"""``python -m pipeline``: see pipeline.cli."""

import sys

from pipeline.cli import run


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
