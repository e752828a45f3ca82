"""The Flex Template, its image and the deploy targets agree with the pipeline they launch.

Nothing here reaches Google Cloud: the metadata is validated with the Dataflow client's own
message type, the Makefile targets run against recording stand-ins for gcloud, docker and Python,
and the Dataflow job graph is built with Beam's dry run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from google.cloud.dataflow_v1beta3.types import TemplateMetadata
from packaging.requirements import Requirement

from connectors.hours import hour_range, parse_hour
from pipeline.options import OPTION_CLASSES, SECRET_FLAGS, UsageError, parse_flags
from tests.test_deploy_docs import sh_commands

REPO = Path(__file__).resolve().parent.parent
METADATA = REPO / "templates" / "metadata.json"
DOCKERFILE = REPO / "templates" / "Dockerfile"
DOCKERIGNORE = REPO / "templates" / "Dockerfile.dockerignore"

# What a launch must always say. The hours and the job folder define the job; the PostHog host is
# required too, so that a launch from the console never sends a history to a default region.
REQUIRED = {"start", "end", "work_dir", "posthog_host"}

# Options a template launch does not offer, and why. A new option must land here or in
# metadata.json (test_every_option_is_a_parameter_or_excluded_for_a_reason).
EXCLUDED = {
    "job_name": "the Dataflow job name is the template launch's own; a migration is identified "
                "by its work_dir",
    "quiet": "only changes the launcher's console output",
    "accept_empty": "a launch only submits the job; the empty-run check happens when the job's "
                    "command is run again to finish it",
}
# Switches: the launcher passes them as --name=true|false like every parameter.
SWITCHES = ("force", "dry_run", "preserve_sources", "preserve_translations", "group_identify",
            "person_snapshot", "insecure")

HOUR_BAD = ["2024010100", "20240101T24", "2024-13-01T00", "20240132T00", "2024-01-01 00",
            "2024-01-01T00:00", "20240101T0", " 20240101T00", "2024-0101T00", "T00", ""]
URL_GOOD = ["https://us.i.posthog.com", "https://eu.i.posthog.com/", "http://127.0.0.1:8000",
            "https://posthog.example.com/ingest"]
URL_BAD = ["us.i.posthog.com", "ftp://eu.i.posthog.com", "https://", "https://user:pw@host.com",
           "https://host .com", "https://eu.i.posthog.com/a b", ""]
GCS_BAD = ["/tmp/migrations", "migrations", "gs://", "gs://Bucket/x", "s3://bucket/x",
           "gs://bucket/a b"]
SECRET_GOOD = ["projects/my-project/secrets/posthog-api-key/versions/latest",
               "projects/123456/secrets/amp_key/versions/3"]
SECRET_BAD = ["phc_0123456789abcdefghijklmnopqrstuvwxyzABCDEF", "0123456789abcdef0123456789abcdef",
              "projects/p/secrets/s", "projects/p/secrets/s/versions/", "my-secret"]
# Good and bad values for every parameter that has regexes.
SAMPLES = {
    "start": (["20240101T00", "2024-12-31T23", "20240229T12"], HOUR_BAD),
    "end": (["20241231T23", "2024-01-01T00"], HOUR_BAD),
    "work_dir": (["gs://my-bucket/migrations/amplitude-2024", "gs://b_1.x/job/"], GCS_BAD),
    "source_path": (["gs://my-bucket/amplitude/*.zip", "gs://my-bucket/export/**"], GCS_BAD),
    "amplitude_url": (["https://amplitude.com", "https://analytics.eu.amplitude.com"], URL_BAD),
    "posthog_host": (URL_GOOD, URL_BAD),
    "amplitude_api_key": (SECRET_GOOD, SECRET_BAD),
    "amplitude_secret_key": (SECRET_GOOD, SECRET_BAD),
    "posthog_api_key": (SECRET_GOOD, SECRET_BAD),
    "limit_hours": (["1", "24"], ["0", "-1", "1.5", "ten", ""]),
    "amplitude_max_attempts": (["1", "8"], ["0", "-3", "2.0", ""]),
    "amplitude_concurrency": (["1", "4", "16"], ["0", "-2", "1.5", ""]),
    "amplitude_max_retry_seconds": (["900", "0.5", "0"], ["-1", "1e3", "", "5s"]),
    "amplitude_read_timeout": (["300", "1800.5", "0.5"], ["0", "0.0", "-1", "1e3", "", "5s"]),
    "batch_size": (["1000", "1"], ["0", "-5", "1.5", ""]),
    "sleep_interval_ms": (["0", "250"], ["-1", "0.5", ""]),
    "max_events_per_second": (["2000", "12.5"], ["-1", "1e3", "fast", ""]),
    "max_retry_seconds": (["600", "0.25"], ["-1", ""]),
    "rename_event": (["Signed Up::user signed up", "a::b"], ["Signed Up", "::b", "a::", ""]),
    "rename_property": (["plan::subscription_plan"], ["plan", "::x", ""]),
    **{name: (["true", "false"], ["True", "yes", "1", "on", "", "true ", "falsey"])
       for name in SWITCHES},
}


def _metadata() -> dict:
    return json.loads(METADATA.read_text())


def _parameters() -> dict[str, dict]:
    return {p["name"]: p for p in _metadata()["parameters"]}


def _option_actions() -> dict[str, list[argparse.Action]]:
    parser = argparse.ArgumentParser(add_help=False)
    for cls in OPTION_CLASSES:
        cls._add_argparse_args(parser)
    actions: dict[str, list[argparse.Action]] = {}
    for action in parser._actions:
        actions.setdefault(action.dest, []).append(action)
    return actions


def _matches(param: dict, value: str) -> bool:
    return all(re.search(regex, value) for regex in param.get("regexes", []))


# --- metadata.json ---------------------------------------------------------------------------


def test_metadata_is_a_valid_flex_template_metadata_message():
    # from_json refuses unknown fields, wrong types and unknown paramType values, as the
    # Dataflow API would.
    message = TemplateMetadata.from_json(METADATA.read_text())
    assert message.name and message.description
    assert len(message.parameters) == len(_metadata()["parameters"])
    for param in message.parameters:
        assert param.label and param.help_text, param.name


def test_every_parameter_is_an_option_of_the_pipeline():
    actions = _option_actions()
    for name, param in _parameters().items():
        assert name in actions, f"{name} is not an option of the pipeline"
        assert name not in EXCLUDED, f"{name} is both a parameter and excluded"
        if param.get("paramType") == "BOOLEAN":
            for text, value in (("true", True), ("false", False)):
                assert parse_flags([f"--{name}={text}"])[0][name] is value
            continue
        if param.get("paramType") == "ENUM":
            values = [option["value"] for option in param["enumOptions"]]
            assert tuple(values) == actions[name][0].choices, name
        else:
            values = SAMPLES[name][0] if name in SAMPLES else ["some value"]
        for value in values:
            # The launcher passes each parameter as --name=value.
            given, rest = parse_flags([f"--{name}={value}"])
            expected = actions[name][0].type(value) if actions[name][0].type else value
            got = given[name][-1] if isinstance(actions[name][0], argparse._AppendAction) \
                else given[name]
            assert got == expected and rest == [], (name, value)


def test_every_option_is_a_parameter_or_excluded_for_a_reason():
    params, actions = _parameters(), _option_actions()
    missing = set(actions) - set(params) - set(EXCLUDED) - {"help"}
    assert not missing, f"options neither in metadata.json nor in EXCLUDED: {sorted(missing)}"
    assert set(EXCLUDED) <= set(actions)


def test_required_parameters_are_exactly_those_a_launch_must_give():
    required = {name for name, p in _parameters().items() if not p.get("isOptional", False)}
    assert required == REQUIRED


def test_optional_parameters_state_their_default():
    for name, param in _parameters().items():
        if param.get("isOptional"):
            assert "Default:" in param["helpText"], name


def test_no_parameter_takes_a_raw_key():
    params = _parameters()
    for name in SECRET_FLAGS:
        if name in params:
            assert params[name]["regexes"], f"{name} must only take a Secret Manager name"
            assert not any(_matches(params[name], bad) for bad in SECRET_BAD[:2]), name


def test_regexes_use_syntax_every_regex_engine_reads_alike():
    # Dataflow documents POSIX egrep regexes; backslash escapes (\d, \s, \/) and (?...) groups
    # differ between POSIX, RE2 and Python, so the patterns stay within plain ERE.
    for name, param in _parameters().items():
        for regex in param.get("regexes", []):
            assert "\\" not in regex and "(?" not in regex and "[:" not in regex, (name, regex)
            assert regex.startswith("^") and regex.endswith("$"), (name, regex)


def test_every_parameter_with_regexes_has_samples():
    with_regexes = {n for n, p in _parameters().items() if p.get("regexes")}
    assert with_regexes == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_regexes_accept_good_values_and_refuse_bad_ones(name):
    param = _parameters()[name]
    good, bad = SAMPLES[name]
    for value in good:
        assert _matches(param, value), (name, value)
    for value in bad:
        assert not _matches(param, value), (name, value)


def test_hours_the_regex_accepts_are_hours_the_pipeline_parses():
    param = _parameters()["start"]
    for value in SAMPLES["start"][0] + SAMPLES["end"][0]:
        assert _matches(param, value)
        assert re.fullmatch(r"\d{8}T\d{2}", parse_hour(value))
    assert _parameters()["end"]["regexes"] == param["regexes"]


# --- Dockerfile ------------------------------------------------------------------------------


def _dockerfile() -> list[list[str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.split() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _arg(name: str) -> str:
    for words in _dockerfile():
        if words[0] == "ARG" and words[1].startswith(f"{name}="):
            return words[1].split("=", 1)[1]
    raise AssertionError(f"no ARG {name} in the Dockerfile")


def _copies() -> list[tuple[str, str]]:
    """(repository path, absolute image path) of every COPY from the build context."""
    copies, workdir = [], "/"
    for words in _dockerfile():
        if words[0] == "WORKDIR":
            workdir = words[1]
        elif words[0] == "COPY" and not any(w.startswith("--from") for w in words):
            *sources, dest = words[1:]
            into_folder = dest.endswith("/") or len(sources) > 1
            dest = os.path.join(workdir, dest)
            for source in sources:
                target = os.path.join(dest, os.path.basename(source)) if into_folder else dest
                copies.append((source, os.path.normpath(target)))
    return copies


def _image_to_repo(path: str) -> Path:
    for source, target in _copies():
        if path == target or path.startswith(target + "/"):
            return REPO / source / os.path.relpath(path, target)
    raise AssertionError(f"{path} is not copied into the image")


def test_dockerfile_copies_exist_and_are_in_the_build_context():
    ignore = DOCKERIGNORE.read_text().splitlines()
    assert "*" in ignore, "the build context is an allow-list"
    copies = _copies()
    assert copies
    for source, _ in copies:
        assert (REPO / source).exists(), source
        assert f"!{source}" in ignore, f"{source} is excluded from the build context"


def test_flex_template_environment_points_at_files_of_the_repository():
    env = {words[1].split("=", 1)[0]: words[1].split("=", 1)[1]
           for words in _dockerfile() if words[0] == "ENV"}
    assert _image_to_repo(env["FLEX_TEMPLATE_PYTHON_PY_FILE"]) == REPO / "pipeline" / "__main__.py"
    assert _image_to_repo(env["FLEX_TEMPLATE_PYTHON_SETUP_FILE"]) == REPO / "setup.py"
    for name, path in env.items():
        if name.startswith("FLEX_TEMPLATE_PYTHON_"):
            assert _image_to_repo(path).is_file(), name


def test_image_beam_and_python_match_setup_py_and_this_environment():
    tree = ast.parse((REPO / "setup.py").read_text())
    pins = [node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "BEAM" for t in node.targets)]
    assert len(pins) == 1, "setup.py should hold the apache-beam requirement in BEAM"
    spec = Requirement(pins[0]).specifier
    version = _arg("BEAM_VERSION")
    assert version in spec, (version, pins[0])
    assert version == beam.__version__
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    froms = [words[1] for words in _dockerfile() if words[0] == "FROM"]
    assert f"apache/beam_python{python}_sdk:${{BEAM_VERSION}}" in froms
    assert any(f"python{python.replace('.', '')}-template-launcher-base:" in f for f in froms)
    assert "latest" not in " ".join(froms) and _arg("LAUNCHER_TAG") != "latest"


def test_flex_template_py_file_runs_as_a_script(tmp_path):
    # The launcher runs FLEX_TEMPLATE_PYTHON_PY_FILE as a script (its folder first on sys.path,
    # the installed package found after it); it must reach pipeline.cli.run() that way.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "pipeline" / "__main__.py"), "--version"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("aplistorical ")


PACKAGES = ("pipeline", "connectors", "transforms")


def _project_copy(target: Path) -> Path:
    """setup.py and the packages, copied where building them leaves the checkout untouched."""
    target.mkdir()
    shutil.copy(REPO / "setup.py", target)
    for package in PACKAGES:
        shutil.copytree(REPO / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_setup_py_ships_every_module_to_the_workers(tmp_path):
    # Beam's stager turns --setup_file into the sdist the workers install; build it the same way
    # (in a copy, so the checkout gets no build files) and look for every module.
    from apache_beam.runners.portability.stager import Stager

    project = _project_copy(tmp_path / "project")
    out = tmp_path / "dist"
    out.mkdir()
    cwd = os.getcwd()
    try:
        sdist = Stager._build_setup_package(str(project / "setup.py"), str(out))
    finally:
        os.chdir(cwd)
    with tarfile.open(sdist) as tar:
        shipped = {"/".join(Path(n).parts[1:]) for n in tar.getnames()}
    for package in PACKAGES:
        for module in (REPO / package).glob("*.py"):
            assert f"{package}/{module.name}" in shipped, f"{package}/{module.name}"


# --- deploy.mk -------------------------------------------------------------------------------

RECORDER = """#!/bin/sh
# Records one call: its name, then its arguments, one a line.
{ echo "== $(basename "$0")"; for a in "$@"; do echo "$a"; done
  echo "env POSTHOG_API_KEY=${POSTHOG_API_KEY:-}"; } >> "$CALLS"
"""
COMMON = {"PROJECT": "my-project", "REGION": "europe-west1", "BUCKET": "my-bucket"}
RUN = {**COMMON, "START": "20240101T00", "END": "2024-01-31T23",
       "POSTHOG_HOST": "https://eu.i.posthog.com"}
TARGETS = {"template": COMMON, "dataflow": RUN, "launch-template": RUN}
KEY = "phc_never_printed_0123456789"


@pytest.fixture
def tools(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gcloud", "docker", "python"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _make(target, variables, bin_dir, tmp_path):
    calls = tmp_path / "calls.txt"
    # A clean environment: make would otherwise take PROJECT and friends from the caller's.
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "POSTHOG_API_KEY": KEY,
           "HOME": str(tmp_path)}
    args = [f"{k}={v}" for k, v in {"PY": str(bin_dir / "python"), **variables}.items()]
    done = subprocess.run(["make", "--no-print-directory", "-f", "deploy.mk", target, *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    recorded = []
    if calls.exists():
        for line in calls.read_text().splitlines():
            if line.startswith("== "):
                recorded.append([line[3:]])
            else:
                recorded[-1].append(line)
    return done, recorded


def _printed(stdout: str) -> str:
    return " ".join(stdout.replace("\\\n", " ").split())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_deploy_targets_print_exactly_what_they_run(target, tools, tmp_path):
    done, calls = _make(target, TARGETS[target], tools, tmp_path)
    assert done.returncode == 0, done.stderr
    assert calls
    printed = _printed(done.stdout)
    for call in calls:
        env_line = call.pop()
        assert env_line == f"env POSTHOG_API_KEY={KEY}"  # keys travel in the environment...
        name = str(tools / "python") if call[0] == "python" else call[0]
        assert " ".join([name, *call[1:]]) in printed, call
    assert KEY not in done.stdout + done.stderr  # ...never on a printed command line


def test_template_target_builds_pushes_and_registers_the_same_image(tools, tmp_path):
    done, calls = _make("template", {**COMMON, "TAG": "v1"}, tools, tmp_path)
    assert done.returncode == 0, done.stderr
    image = "europe-west1-docker.pkg.dev/my-project/aplistorical/aplistorical:v1"
    build, push, spec = [c[:-1] for c in calls]
    assert build[:2] == ["docker", "build"] and build[-1] == "."
    assert build[build.index("-f") + 1] == "templates/Dockerfile"
    assert build[build.index("-t") + 1] == image
    assert push == ["docker", "push", image]
    assert spec[:4] == ["gcloud", "dataflow", "flex-template", "build"]
    assert spec[4] == "gs://my-bucket/templates/aplistorical.json"
    assert spec[spec.index("--image") + 1] == image
    assert spec[spec.index("--metadata-file") + 1] == "templates/metadata.json"


def test_dataflow_target_runs_the_pipeline_with_valid_flags(tools, tmp_path):
    done, calls = _make("dataflow", {**RUN, "MAX_EVENTS_PER_SECOND": "50",
                                     "ARGS": "--identify_mode off"}, tools, tmp_path)
    assert done.returncode == 0, done.stderr
    (call,) = calls
    argv = call[1:-1]
    assert argv[:2] == ["-m", "pipeline"]
    given, beam_args = parse_flags(argv[2:])
    assert (given["start"], given["end"]) == ("20240101T00", "2024-01-31T23")
    assert given["work_dir"] == "gs://my-bucket/migrations/amplitude-20240101T00-2024-01-31T23"
    assert given["posthog_host"] == "https://eu.i.posthog.com"
    assert given["max_events_per_second"] == 50 and given["identify_mode"] == "off"
    options = PipelineOptions(beam_args).get_all_options()
    assert options["runner"] == "DataflowRunner" and options["project"] == "my-project"
    assert options["temp_location"] == "gs://my-bucket/tmp"
    assert options["setup_file"] == "./setup.py" and (REPO / "setup.py").is_file()
    assert options["max_num_workers"] == 4


def test_launch_template_passes_only_declared_parameters(tools, tmp_path):
    secret = "projects/my-project/secrets/posthog-api-key/versions/latest"
    done, calls = _make("launch-template", {**RUN, "JOB": "migrate-2024",
                                            "POSTHOG_API_KEY_SECRET": secret}, tools, tmp_path)
    assert done.returncode == 0, done.stderr
    (call,) = calls
    argv = call[1:-1]
    assert argv[:4] == ["dataflow", "flex-template", "run", "migrate-2024"]
    assert argv[argv.index("--template-file-gcs-location") + 1] == \
        "gs://my-bucket/templates/aplistorical.json"
    passed = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--parameters")
    params = _parameters()
    beam_options = PipelineOptions([]).get_all_options()
    for name, value in passed.items():
        assert name in params or name in beam_options, name
        if name in params:
            assert _matches(params[name], value), (name, value)
    assert REQUIRED <= set(passed)
    assert passed["posthog_api_key"] == secret
    assert passed["sdk_container_image"].startswith("europe-west1-docker.pkg.dev/my-project/")


@pytest.mark.parametrize("target,missing", [(t, v) for t in sorted(TARGETS) for v in TARGETS[t]])
def test_deploy_targets_name_a_missing_variable_and_run_nothing(target, missing, tools,
                                                                 tmp_path):
    variables = {k: v for k, v in TARGETS[target].items() if k != missing}
    done, calls = _make(target, variables, tools, tmp_path)
    assert done.returncode != 0
    assert f"{missing} is not set" in done.stderr
    assert calls == []


def _deploy_doc_commands() -> list[list[str]]:
    page = (REPO / "docs" / "deploy.md").read_text()
    section = page[page.index("<!-- deploy:begin -->"):page.index("<!-- deploy:end -->")]
    return sh_commands(section)


def test_deploy_doc_commands_use_real_options_variables_and_parameters():
    commands = _deploy_doc_commands()
    pipelines = [c[c.index("pipeline") + 1:] for c in commands if c[1:3] == ["-m", "pipeline"]]
    makes = [c for c in commands if c[0] == "make"]
    launches = [c for c in commands if c[:4] == ["gcloud", "dataflow", "flex-template", "run"]]
    assert pipelines and makes and launches
    for argv in pipelines:
        given, beam_args = parse_flags(argv)  # raises on an unknown flag
        assert given["start"] and given["work_dir"].startswith("gs://"), argv
        assert not any(given[name] for name in SECRET_FLAGS)  # keys come from the environment
        assert "--setup_file" in beam_args
    deploy = (REPO / "deploy.mk").read_text()
    for command in makes:
        assert command[1] in TARGETS, command
        for name in (arg.split("=", 1)[0] for arg in command[2:]):
            assert f"$({name})" in deploy or f",{name})" in deploy, name
    params, beam_options = _parameters(), PipelineOptions([]).get_all_options()
    for argv in launches:
        passed = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--parameters")
        assert REQUIRED <= set(passed)
        for name, value in passed.items():
            assert name in params or name in beam_options, name
            if name in params:
                assert _matches(params[name], value), (name, value)


# --- the Dataflow job graph ------------------------------------------------------------------


def test_dataflow_job_graph_builds_offline_with_our_package_and_no_keys_in_view(tmp_path):
    # Beam's dry run builds the Runner API graph the Dataflow job would run, including the
    # workers' dependencies, and stops before uploading or submitting anything.
    from pipeline import job as jobs
    from pipeline.build import build

    project = _project_copy(tmp_path / "project")  # building the sdist writes next to setup.py
    keys = {"posthog_api_key": "phc_dry_run_key_0123456789",
            "amplitude_api_key": "amp_dry_run_key_0123456789",
            "amplitude_secret_key": "amp_dry_run_secret_0123456789"}
    argv = ["--start=20240101T00", "--end=20240101T02", f"--work_dir={tmp_path / 'job'}",
            "--posthog_host=https://eu.i.posthog.com",
            *(f"--{name}={value}" for name, value in keys.items()),
            "--runner=DataflowRunner", "--project=test-project", "--region=europe-west1",
            "--temp_location=gs://test-bucket/tmp", f"--setup_file={project / 'setup.py'}",
            # PostHog Cloud's default pace is shared by the workers, so their number is needed.
            "--max_num_workers=2"]
    given, beam_args = parse_flags(argv)
    job, secrets = jobs.resolve(given, environ={})
    hours = hour_range(job.start, job.end)
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args, dry_run=True))
    build(pipeline, job, secrets, hours, hours, "20240101T000000-abcdef")
    result = pipeline.run()
    graph = result.job.proto_pipeline

    names = {t.unique_name for t in graph.components.transforms.values()}
    for stage in ("ReadAmplitude", "Translate", "WriteToPostHog", "CommitHours", "Generate",
                  "WriteGenerated", "RecordGenerated"):
        assert stage in names, stage

    # The workers' environment carries this project, built from --setup_file.
    staged = {}
    for environment in graph.components.environments.values():
        for artifact in environment.dependencies:
            if artifact.role_urn == common_urns.artifact_roles.STAGING_TO.urn:
                name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                    artifact.role_payload).staged_name
                staged[name] = beam_runner_api_pb2.ArtifactFilePayload.FromString(
                    artifact.type_payload).path
    assert "workflow.tar.gz" in staged, sorted(staged)
    with tarfile.open(staged["workflow.tar.gz"]) as tar:
        shipped = {"/".join(Path(n).parts[1:]) for n in tar.getnames()}
    assert {"pipeline/build.py", "connectors/posthog.py", "transforms/records.py"} <= shipped

    # The console shows a job's options and its steps' display data: no key may be in them.
    options = result.job.options.get_all_options()
    assert options["project"] == "test-project"
    shown = repr(options).encode() + b"".join(
        data.SerializeToString() for t in graph.components.transforms.values()
        for data in t.display_data)
    assert b"europe-west1" in shown and b"Transform Function" in shown  # what is shown...
    for value in keys.values():
        assert value.encode() not in shown  # ...its key is not


def test_switches_take_true_or_false_and_refuse_a_stray_value():
    # A launch passes --name=true|false; typed by hand, a switch alone still means true. A value
    # that is not a boolean, or one left standing after --no_name, must stop the run rather than
    # reach Beam and be ignored.
    for name in SWITCHES:
        for argv, value in (([f"--{name}=true"], True), ([f"--{name}=false"], False),
                            ([f"--{name}"], True), ([f"--no_{name}"], False)):
            given, rest = parse_flags(argv)
            assert given[name] is value and rest == [], argv
        for argv, error in (([f"--{name}=maybe"], f"--{name}: expected true or false"),
                            ([f"--{name}="], f"--{name}: expected true or false"),
                            ([f"--no_{name}", "false"], "false: unexpected value"),
                            ([f"--{name}=true", "false"], "false: unexpected value")):
            with pytest.raises(UsageError, match=error):
                parse_flags(argv)
