"""The declared lower bounds are the versions CI tests: requirements.txt, pyproject.toml and the pins of
.ci/constraints-lowest.txt (the environment .ci/lowest-versions builds) name the same release for each package."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
from packaging.requirements import Requirement  # noqa: E402
from packaging.version import Version  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _floors(lines) -> dict[str, list[Version]]:
    out: dict[str, list[Version]] = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        out.setdefault(_norm(req.name), []).extend(Version(s.version) for s in req.specifier if s.operator == ">=")
    return out


PINS = {_norm(n): Version(v) for n, v in
        re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / ".ci/constraints-lowest.txt").read_text(), re.M)}
REQUIREMENTS = _floors((ROOT / "requirements.txt").read_text().splitlines())
_project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PYPROJECT = _floors(_project["dependencies"] + [d for ds in _project["optional-dependencies"].values() for d in ds])


def test_every_requirement_is_pinned_at_its_floor():
    assert set(REQUIREMENTS) == set(PINS), "requirements.txt and .ci/constraints-lowest.txt name different packages"
    for name, floors in REQUIREMENTS.items():
        assert floors == [PINS[name]], f"requirements.txt: {name} >= {floors}, CI tests {PINS[name]}"


def test_pyproject_declares_the_same_floors():
    for name, floors in PYPROJECT.items():
        if name in PINS:
            assert set(floors) == {PINS[name]}, f"pyproject.toml: {name} >= {floors}, CI tests {PINS[name]}"


def test_ci_runs_the_lowest_versions():
    run = (ROOT / ".ci/run").read_text()
    assert "\n.ci/lowest-versions" in run or "bash .ci/lowest-versions" in run, ".ci/run no longer tests them"


def test_ci_ends_with_the_readme_test_command():
    """README: 'CI runs exactly this'. Its test command is .ci/run's last command, as written there."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    lines = block.strip().splitlines()
    command = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("# Run the tests")).strip()
    run = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip()]
    assert run[-1].strip() == command, "the last line of .ci/run is not the README's test command"
