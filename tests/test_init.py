"""``python -m pipeline init``: answers typed at a real pseudo-terminal, and flags with no terminal.

The live key checks talk to the sandbox servers over loopback, with right and wrong keys.
"""

from __future__ import annotations

import fcntl
import http.server
import io
import os
import select
import shlex
import socket
import subprocess
import sys
import termios
import threading

import orjson
import pytest

from pipeline.init import init
from pipeline.init_checks import (ACCEPTED, REFUSED, UNREACHABLE, check_amplitude_keys,
                                  check_posthog_key)
from sandbox.amplitude import AmplitudeExportServer
from sandbox.posthog import PostHogCaptureServer
from tests.e2e import KEYS, make_export, report

pytestmark = pytest.mark.timeout(180)

EXPORT = make_export(rows=120, start="20240402T00", hours=2, seed=21)
WRONG_KEY = "wrong-key-typed-5150"


@pytest.fixture
def sandbox():
    amplitude = AmplitudeExportServer(EXPORT.rows, api_key=KEYS["AMPLITUDE_API_KEY"],
                                      secret_key=KEYS["AMPLITUDE_SECRET_KEY"])
    posthog = PostHogCaptureServer(KEYS["POSTHOG_API_KEY"])
    with amplitude, posthog:
        yield amplitude, posthog


def _environ(**extra: str) -> dict:
    """The test's environment without any key, so only what a test gives is there."""
    environ = {k: v for k, v in os.environ.items() if k not in KEYS}
    return {**environ, **extra}


def _init(*args: str, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "init", *args], cwd=cwd,
                          env=_environ() if env is None else env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def init_here(monkeypatch, capsys, tmp_path):
    """``init`` called in this process (no interpreter start-up), with no terminal and no keys
    unless given; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def call(*args: str, env: dict | None = None):
        for name in KEYS:
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        code = init(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def _controlling_terminal() -> None:
    # Runs in the child after setsid(): stdin (the pty) becomes its terminal, so getpass opens
    # /dev/tty on the pty, as it would in a person's shell.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``python -m pipeline init`` on a pseudo-terminal: wait for a prompt, type an answer."""

    def __init__(self, *args: str, cwd, env: dict):
        self._master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "init", *args], cwd=cwd, env=env, stdin=slave,
            stdout=slave, stderr=slave, start_new_session=True,
            preexec_fn=_controlling_terminal)  # pylint: disable=subprocess-popen-preexec-fn
        os.close(slave)
        self.transcript = ""
        self._seen = 0

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self._master, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.transcript += data.decode(errors="replace")
        return bool(data)

    def expect(self, text: str, timeout: float = 60) -> str:
        """Reads until ``text`` appears after what was expected before; returns what came."""
        while text not in self.transcript[self._seen:]:
            assert self._read(timeout), f"waited for {text!r}; terminal shows:\n{self.transcript}"
        end = self.transcript.index(text, self._seen) + len(text)
        came, self._seen = self.transcript[self._seen:end], end
        return came

    def answer(self, prompt: str, text: str = "") -> str:
        """Waits for a prompt containing ``prompt`` to be shown whole, then types ``text``."""
        came = self.expect(prompt)
        while not self.transcript.endswith(": "):
            assert self._read(60), f"no whole prompt; terminal shows:\n{self.transcript}"
        came += self.transcript[self._seen:]
        self._seen = len(self.transcript)
        os.write(self._master, text.encode() + b"\r")  # the Enter key
        return came

    def finish(self, timeout: float = 60) -> int:
        while self._read(timeout):
            pass
        code = self.proc.wait(timeout)
        os.close(self._master)
        return code


def test_answers_typed_at_a_terminal_with_one_bad_answer_and_wrong_keys(sandbox, tmp_path):
    amplitude, posthog = sandbox
    work_dir = tmp_path / "acme-april"
    term = Terminal("--amplitude_url", amplitude.url, cwd=tmp_path,
                    env=_environ(POSTHOG_API_KEY=KEYS["POSTHOG_API_KEY"]))
    term.answer("(--start): ", "2024-04-31T00")
    asked_again = term.answer("(--start): ", "2024-04-02T00")
    assert "--start: '2024-04-31T00' is not an hour" in asked_again
    assert "[20240402T23]" in term.answer("(--end)", "20240402T01")
    assert "[amplitude-20240402T00-20240402T01]" in term.answer("(--job_name)", "")
    term.answer("(--work_dir)", str(work_dir))
    term.answer("(--amplitude_api_key, not shown)", WRONG_KEY)
    term.answer("(--amplitude_secret_key, not shown)", KEYS["AMPLITUDE_SECRET_KEY"])
    refused = term.answer("(--amplitude_api_key, not shown)", KEYS["AMPLITUDE_API_KEY"])
    assert "Amplitude refused the API key and secret key (HTTP 401" in refused
    term.answer("(--amplitude_secret_key, not shown)", KEYS["AMPLITUDE_SECRET_KEY"])
    term.answer("(--posthog_host) [https://us.i.posthog.com]", posthog.url)
    # The environment's key is offered, and Enter takes it.
    term.answer("(--posthog_api_key, not shown) [Enter keeps $POSTHOG_API_KEY]", "")
    term.answer("(--batch_size) [1000]", "ten")
    assert "--batch_size: invalid int value: 'ten'" in term.answer("(--batch_size)", "500")
    term.answer("(--sleep_interval_ms) [0]", "")
    term.answer("(--ignore_event; Enter when done)", "Debug Ping")
    term.answer("(--ignore_event; another, or Enter when done)", "")
    term.answer("(--rename_event; Enter when done)", "Signed Up")
    assert "expected SRC::DST" in term.answer("(--rename_event; Enter when done)",
                                              "Signed Up::signed_up")
    term.answer("(--rename_event; another, or Enter when done)", "")
    term.answer("(--rename_property; Enter when done)", "")
    term.answer("(--user_properties_mode) [set]", "")
    term.answer("(--preserve_sources) [y/N]", "y")
    term.answer("(--preserve_translations) [y/N]", "")
    term.answer("(--identify_mode) [pairs]", "per_file")
    assert term.finish() == 0, term.transcript

    shown = term.transcript
    for key in (*KEYS.values(), WRONG_KEY):
        assert key not in shown  # typed keys are not echoed...
    assert "Debug Ping" in shown and "20240402T01" in shown  # ...while other answers are
    assert "✓ Amplitude accepted the keys" in shown and "✓ PostHog" in shown
    stored = orjson.loads((work_dir / "job.json").read_bytes())
    assert {k: stored[k] for k in ("start", "end", "job_name", "amplitude_url", "posthog_host",
                                   "batch_size", "ignore_event", "rename_event",
                                   "preserve_sources", "preserve_translations",
                                   "identify_mode")} == {
        "start": "20240402T00", "end": "20240402T01",
        "job_name": "amplitude-20240402T00-20240402T01", "amplitude_url": amplitude.url,
        "posthog_host": posthog.url, "batch_size": 500, "ignore_event": ["Debug Ping"],
        "rename_event": ["Signed Up::signed_up"], "preserve_sources": True,
        "preserve_translations": False, "identify_mode": "per_file"}
    assert stored["secrets_from_environment"]["posthog_api_key"] == "POSTHOG_API_KEY"
    raw = (work_dir / "job.json").read_text()
    assert not any(key in raw for key in (*KEYS.values(), WRONG_KEY))
    assert f"python -m pipeline --work_dir {work_dir}" in shown
    assert "export AMPLITUDE_API_KEY=" in shown


def test_flags_alone_make_a_job_that_the_printed_command_runs(sandbox, tmp_path):
    amplitude, posthog = sandbox
    work_dir = tmp_path / "from-flags"
    done = _init("--start", EXPORT.start, "--end", EXPORT.end, "--work_dir", str(work_dir),
                 "--amplitude_url", amplitude.url, "--posthog_host", posthog.url,
                 "--batch_size", "250", "--ignore_event", "Debug Ping", cwd=tmp_path,
                 env=_environ(**KEYS))
    assert done.returncode == 0, done.stderr
    assert ": " not in done.stdout.split("Checking")[0]  # no prompt came before the checks
    assert posthog.events == []  # the key check sent no event
    command = done.stdout.strip().splitlines()[-1].strip()
    assert command == shlex.join(["python", "-m", "pipeline", "--work_dir", str(work_dir)])
    for key in KEYS.values():
        assert key not in done.stdout + done.stderr + (work_dir / "job.json").read_text()

    ran = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=tmp_path,
                         env=_environ(**KEYS), capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0, ran.stderr[-3000:]
    rep = report(work_dir)
    assert rep["status"] == "complete" and rep["rows_read"] == len(EXPORT.rows)
    assert rep["settings"]["batch_size"] == 250


def test_no_check_makes_no_request_and_needs_no_key(sandbox, init_here, tmp_path):
    amplitude, posthog = sandbox
    code, _, err = init_here("--start", EXPORT.start, "--end", EXPORT.end, "--work_dir", "j",
                             "--amplitude_url", amplitude.url, "--posthog_host", posthog.url,
                             "--no_check")
    assert code == 0, err
    assert posthog.request_log == [] and amplitude.request_count(EXPORT.start) == 0
    assert (tmp_path / "j" / "job.json").exists()


@pytest.mark.parametrize("args, flag", [
    ((), "--start"),
    (("--start", "20240402T00"), "--end"),
    (("--start", "20240402T00", "--end", "20240401T00"), "--end"),
    (("--start", "20240402T00", "--end", "20240402T01", "--posthog_host", "us.i.posthog.com"),
     "--posthog_host"),
    (("--start", "20240402T00", "--end", "20240402T01", "--rename_event", "nope"),
     "--rename_event"),
    (("--start", "20240402T00", "--end", "20240402T01", "--batchsize", "5"), "--batchsize"),
])
def test_without_a_terminal_a_missing_or_wrong_answer_is_an_error_naming_its_flag(
        init_here, tmp_path, args, flag):
    code, out, err = init_here(*args, "--no_check")
    assert code == 2
    assert err.startswith(f"error: {flag}:"), err
    assert out == "" and not (tmp_path / "migrations").exists()


def test_without_a_terminal_missing_keys_are_named(init_here):
    code, _, err = init_here("--start", "20240402T00", "--end", "20240402T01")
    assert code == 2
    assert err.startswith("error: --amplitude_api_key:") and "--no_check" in err


@pytest.mark.parametrize("wrong, flag", [("AMPLITUDE_SECRET_KEY", "--amplitude_api_key"),
                                         ("POSTHOG_API_KEY", "--posthog_api_key")])
def test_without_a_terminal_a_wrong_key_stops_init(sandbox, init_here, tmp_path, wrong, flag):
    amplitude, posthog = sandbox
    code, out, err = init_here("--start", EXPORT.start, "--end", EXPORT.end, "--work_dir", "j",
                               "--amplitude_url", amplitude.url, "--posthog_host", posthog.url,
                               env={**KEYS, wrong: WRONG_KEY})
    assert code == 1
    assert err.startswith(f"error: {flag}:") and "refused" in err
    assert WRONG_KEY not in out + err
    assert not (tmp_path / "j" / "job.json").exists()


def test_an_existing_job_is_kept_unless_forced(init_here, tmp_path):
    args = ("--start", "20240402T00", "--end", "20240402T01", "--work_dir", "j", "--no_check")
    assert init_here(*args)[0] == 0
    code, _, err = init_here(*args, "--batch_size", "7")
    assert code == 2 and "already holds a job" in err
    assert init_here(*args, "--batch_size", "7", "--force")[0] == 0
    assert orjson.loads((tmp_path / "j" / "job.json").read_bytes())["batch_size"] == 7


def test_beam_options_given_to_init_are_on_the_printed_command(init_here):
    code, out, err = init_here("--start", "20240402T00", "--end", "20240402T01", "--work_dir",
                               "j k", "--runner", "DirectRunner", "--direct_num_workers=2",
                               "--no_check")
    assert code == 0, err
    assert out.splitlines()[-1].strip() == ("python -m pipeline --work_dir 'j k' --runner "
                                            "DirectRunner --direct_num_workers=2")


def test_help_lists_every_question_with_its_flag(init_here):
    code, out, _ = init_here("--help")
    assert code == 0
    for flag in ("--start", "--posthog_api_key", "--identify_mode", "--no_check"):
        assert flag in out


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_amplitude_key_check(sandbox):
    amplitude, _ = sandbox
    good = (KEYS["AMPLITUDE_API_KEY"], KEYS["AMPLITUDE_SECRET_KEY"])
    assert check_amplitude_keys(amplitude.url, *good, EXPORT.start).verdict == ACCEPTED
    assert check_amplitude_keys(amplitude.url, *good, "20230101T00").verdict == ACCEPTED  # 404
    wrong = check_amplitude_keys(amplitude.url, good[0], WRONG_KEY, EXPORT.start)
    assert wrong.verdict == REFUSED and WRONG_KEY not in wrong.detail
    assert check_amplitude_keys(_closed_port_url(), *good, EXPORT.start).verdict == UNREACHABLE


def test_posthog_key_check_falls_back_to_an_empty_batch(sandbox):
    _, posthog = sandbox
    assert check_posthog_key(posthog.url, KEYS["POSTHOG_API_KEY"]).verdict == ACCEPTED
    wrong = check_posthog_key(posthog.url, WRONG_KEY)
    assert wrong.verdict == REFUSED and "/batch/" in wrong.detail
    assert WRONG_KEY not in wrong.detail and posthog.events == []
    assert check_posthog_key(_closed_port_url(), "phc_x").verdict == UNREACHABLE


class _DecideHandler(http.server.BaseHTTPRequestHandler):
    """A host that answers /decide/ as PostHog Cloud does: 401 for a key of no project."""

    paths: list[str] = []

    def do_POST(self):  # noqa: N802 - the base's naming
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.paths.append(self.path.split("?")[0])
        known = self.path.startswith("/decide/") and body.get("api_key") == "phc_known"
        self.send_response(200 if known else 401)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_posthog_key_check_asks_decide_first():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DecideHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert check_posthog_key(url, "phc_known").verdict == ACCEPTED
        unknown = check_posthog_key(url, "phc_of_no_project")
        assert unknown.verdict == REFUSED and "/decide/" in unknown.detail
        assert _DecideHandler.paths == ["/decide/", "/decide/"]  # no batch was needed
    finally:
        server.shutdown()
        server.server_close()


def test_init_asks_for_the_rate_posthog_agreed_to_when_the_host_is_posthog_cloud(tmp_path):
    flags = ("--no_check", "--start", "20240402T00", "--end", "20240402T01",
             "--amplitude_region", "us", "--amplitude_api_key", "a", "--amplitude_secret_key", "b",
             "--posthog_api_key", "c",
             "--batch_size", "1000", "--sleep_interval_ms", "0", "--ignore_event", "x",
             "--rename_event", "a::b", "--rename_property", "c::d", "--user_properties_mode",
             "set", "--preserve_sources=false", "--preserve_translations=false",
             "--identify_mode", "pairs", "--job_name", "cloud")
    for answer, stored in (("", None), ("2500", 2500.0)):
        work_dir = tmp_path / f"cloud-{answer or 'none'}"
        term = Terminal(*flags, "--work_dir", str(work_dir), "--posthog_host",
                        "https://eu.i.posthog.com", cwd=tmp_path, env=_environ())
        prompt = term.answer("(--max_events_per_second)", answer)
        assert "10,000 a minute for the whole job" in prompt
        assert term.finish() == 0, term.transcript
        assert orjson.loads((work_dir / "job.json").read_bytes())[
            "max_events_per_second"] == stored
