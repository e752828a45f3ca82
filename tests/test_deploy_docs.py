"""docs/deploy.md's Flink and Flex Template steps agree with the Beam and launcher this project
pins, so a user can copy them as they are."""

import re
import shlex
import sys
from pathlib import Path

import apache_beam as beam

REPO = Path(__file__).resolve().parent.parent
PAGE = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")


def sh_commands(text: str) -> list[list[str]]:
    """Each command of the ```sh blocks in ``text``, split as the shell would (continuations
    joined)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(shlex.split(line))
    return commands


COMMANDS = sh_commands(PAGE)


def _dockerfile_arg(name: str) -> str:
    text = (REPO / "templates" / "Dockerfile").read_text()
    return re.search(rf"^ARG {name}=(\S+)$", text, re.M).group(1)


def test_flink_job_server_matches_beam_and_shares_its_artifacts():
    runs = [argv for argv in COMMANDS if argv[:2] == ["docker", "run"]]
    assert runs
    for argv in runs:
        image = next(arg for arg in argv if arg.startswith("apache/beam_flink"))
        # Flink 1.x: one repository per Flink version; Flink 2 and later: one repository, both
        # versions in the tag.
        beam_version = re.escape(beam.__version__)
        assert re.fullmatch(rf"apache/beam_flink_job_server:{beam_version}-flink2\.\d+"
                            rf"|apache/beam_flink1\.\d+_job_server:{beam_version}", image), image
        artifacts = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--artifacts-dir=")]
        assert len(artifacts) == 1, "the job server needs --artifacts-dir the TaskManagers read"
        if not artifacts[0].startswith("gs://"):
            volumes = [argv[i + 1] for i, arg in enumerate(argv) if arg in ("-v", "--volume")]
            assert any(v.split(":")[1] == artifacts[0] for v in volumes), (artifacts, volumes)


def test_flink_sdk_container_matches_this_beam_and_python():
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    portable = [argv for argv in COMMANDS if "PortableRunner" in argv]
    assert portable
    for argv in portable:
        image = argv[argv.index("--environment_config") + 1]
        assert image == f"apache/beam_python{python}_sdk:{beam.__version__}"


def test_launcher_tag_is_a_release_tag_and_the_page_names_it():
    tag = _dockerfile_arg("LAUNCHER_TAG")
    assert re.fullmatch(r"\d{8}_RC\d{2}", tag), tag  # as Google's table of tags spells them
    assert f"`{tag}`" in PAGE


def test_flex_template_service_account_gets_the_roles_googles_guide_lists():
    granted = {argv[argv.index("--role") + 1] for argv in COMMANDS if "--role" in argv}
    roles = re.search(r"for role in ([^;]+);", PAGE).group(1).split()
    assert {"roles/dataflow.worker", "roles/storage.objectAdmin", "roles/viewer"} <= set(roles)
    assert "roles/artifactregistry.reader" in granted
