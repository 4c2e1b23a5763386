"""The set-up path: README commands, .ci/run, environment.yml and pyproject agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_exactly_two_one_line_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2
    for command in commands:
        assert "\n" not in command
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")
        assert "-c constraints.txt" in command  # torch is pinned on the set-up path
    book, tests = commands
    assert "jupyter-book build ." in book
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_torch_pinned_in_constraints_not_in_dependencies():
    pins = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==\d+\.\d+\.\d+$", pins, flags=re.M)
    assert re.search(r"^torchvision==\d+\.\d+\.\d+$", pins, flags=re.M)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch and all("==" not in d for d in torch)


def test_environment_yml_installs_the_project_and_nothing_else():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python, "environment.yml must pin a Python version"
    version = tuple(int(x) for x in python[0].split("=")[-1].split("."))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = tuple(int(x) for x in project["requires-python"].lstrip(">=").split("."))
    assert version >= minimum
    pip_part = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip_part == ["-c constraints.txt", "-e .[book]"]
    extras = project["optional-dependencies"]
    assert "book" in extras


def test_environment_pip_part_resolves_in_a_fresh_venv(tmp_path):
    """No conda solver here: install the pip part's requirements (dry run) in a new venv."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_part = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    # conda writes the pip part to a temporary requirements file beside environment.yml,
    # so relative paths resolve against the repository root: do the same.
    requirements = ROOT / f".condaenv.{tmp_path.name}.requirements.txt"
    requirements.write_text("\n".join(pip_part) + "\n")
    request_cleanup = requirements.unlink
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--dry-run", "--quiet", "-r", str(requirements)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    request_cleanup()
    if "No matching distribution" in result.stderr and "Could not find" in result.stderr:
        pytest.fail(result.stderr[-2000:])
    assert result.returncode == 0, result.stderr[-2000:]
