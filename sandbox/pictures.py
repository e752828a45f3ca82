"""``make pictures``: the documentation's pictures, taken from a ``make demo`` run.

Renders ``demo-output/job/report.html`` and ``preview.html`` in headless Chromium and writes
``docs/report.png`` (the whole page) and ``docs/preview.png`` (its first screen: the summary
and the first rows). Taken from a real run, the pictures show the tool's own reason names and
layout, and refreshing them after a change to either page is one command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from PIL import Image, ImageChops

# (page in the job folder, picture, window height, crop to content). The report is taken whole;
# the preview runs to hundreds of rows, so its picture is the first screen.
_PICTURES = (("report.html", "report.png", 6000, True),
             ("preview.html", "preview.png", 1500, False))
_WIDTH = 1280
_MARGIN = 24  # background kept under the content when cropping
_CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    return next(filter(None, map(shutil.which, _CHROMIUM)), None)


def _shoot(browser: str, page: str, picture: str, height: int, profile: str) -> None:
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
         f"--user-data-dir={profile}", f"--window-size={_WIDTH},{height}",
         f"--screenshot={picture}", "file://" + os.path.abspath(page)],
        capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not os.path.exists(picture):
        raise RuntimeError(f"{browser} could not render {page}: {done.stderr.strip()[-300:]}")


def _crop_to_content(picture: str) -> None:
    """Drops the page background below the last content, as the window is taller than it."""
    with Image.open(picture) as image:
        rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((0, rgb.height - 1)))
    box = ImageChops.difference(rgb, background).getbbox()
    if box and box[3] >= rgb.height:
        raise RuntimeError(f"{picture}: the page is taller than the {rgb.height} px window; "
                           "raise its height in _PICTURES")
    if box:
        rgb.crop((0, 0, rgb.width, min(rgb.height, box[3] + _MARGIN))).save(picture,
                                                                          optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.pictures", description=__doc__)
    parser.add_argument("--job", default=os.path.join("demo-output", "job"),
                        help="Job folder of a demo run. Default: demo-output/job.")
    parser.add_argument("--out", default="docs", help="Folder for the pictures. Default: docs.")
    args = parser.parse_args(argv)
    browser = _browser()
    if browser is None:
        print("error: headless Chromium is needed to take the pictures (e.g. apt-get install "
              "chromium)", file=sys.stderr)
        return 1
    missing = [page for page, *_ in _PICTURES if not os.path.exists(os.path.join(args.job, page))]
    if missing:
        print(f"error: --job: {args.job} has no {', '.join(missing)}; run `make demo` first",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as profile:
        for page, picture, height, crop in _PICTURES:
            target = os.path.join(args.out, picture)
            _shoot(browser, os.path.join(args.job, page), target, height, profile)
            if crop:
                _crop_to_content(target)
            print(f"Wrote {target} from {os.path.join(args.job, page)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
