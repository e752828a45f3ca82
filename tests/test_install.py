"""``pip install .`` gives the ``aplistorical`` command, the same program as ``python -m pipeline``.

The test suite runs from an install of this checkout (``make install``, then the test extras),
so the console script it checks is the one setup.py's entry point made.
"""

import os
import subprocess
import sys
from importlib.metadata import entry_points

from pipeline import cli


def test_console_script_is_the_cli_entry_point():
    (script,) = entry_points(group="console_scripts", name="aplistorical")
    assert script.load() is cli.main


def test_console_script_runs_the_cli(tmp_path):
    command = os.path.join(os.path.dirname(sys.executable), "aplistorical")
    assert os.access(command, os.X_OK), "pip install . did not create the aplistorical command"
    # From another folder, as a user would run it.
    done = subprocess.run([command, "--version"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("aplistorical ")
    usage = subprocess.run([command, "preview", "--rows", "0", "--start", "20240101T00",
                            "--end", "20240101T00"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env={**os.environ, "AMPLITUDE_API_KEY": "",
                                                        "AMPLITUDE_SECRET_KEY": ""})
    assert usage.returncode == 2 and usage.stderr.startswith("error: --rows"), usage.stderr
