"""The student wheel alone: built, installed into a fresh environment in an empty folder,
with no repository on ``sys.path``, then used as a student would.

This is what ``pip install dtcourse`` gives: the three release notebooks, the engine and
the visible checks, and nothing of the instructor's (no nbgrader, no references, no
course sources, no hidden tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from leak_support import postgres_servers, stop_servers

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PHASES = ("phase1_foundations", "phase2_core_concepts", "phase3_advanced_topics")
FORBIDDEN_TEXT = ("BEGIN SOLUTION", "BEGIN HIDDEN", "dtcourse_instructor")


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900):
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # Build from copies (links resolved), so setuptools' build folders stay out of the repository.
    copies = tmp_path_factory.mktemp("projects")
    skip = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    student, instructor = copies / "student", copies / "instructor"
    shutil.copytree(REPO / "dtcourse", student / "dtcourse", ignore=skip)
    for name in ("pyproject.toml", "VERSION", "README.md"):
        shutil.copy(REPO / name, student / name)
    shutil.copytree(REPO / "instructor", instructor, ignore=skip)
    for project in (student, instructor):
        pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out)]
        _run([*pip_wheel, str(project)], cwd=out)
    found = {path.name.split("-")[0]: path for path in out.glob("*.whl")}
    assert set(found) == {"dtcourse", "dtcourse_instructor"}, found
    for path in found.values():
        print(f"wheel {path.name}: {path.stat().st_size / 1024:.0f} KiB")
    return found


@pytest.fixture(scope="module")
def student_env(
    wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """A fresh venv with only the student wheel (and papermill, the test's own runner)."""
    base = tmp_path_factory.mktemp("student")
    empty = base / "empty"
    empty.mkdir()
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=empty)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(wheels["dtcourse"])], cwd=empty)
    installed = _run([str(python), "-m", "pip", "list", "--format=json"], cwd=empty).stdout
    student_packages = sorted(item["name"].lower() for item in json.loads(installed))
    _run([str(python), "-m", "pip", "install", "-q", "papermill"], cwd=empty)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR")
    }
    env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", "")])
    env["HOME"] = str(base / "home")
    env["DTCOURSE_PROGRESS"] = str(base / "progress.sqlite")
    yield {"python": python, "cwd": empty, "env": env, "base": base, "packages": student_packages}


def _lab_dry_run(student_env: dict, workspace: Path) -> subprocess.CompletedProcess[str]:
    command = student_env["python"].with_name("dtcourse")
    return _run(
        [str(command), "lab", "--dry-run", "--workspace", str(workspace)],
        cwd=student_env["cwd"],
        env=student_env["env"],
    )


def test_the_wheel_holds_the_notebooks_and_no_instructor_material(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["dtcourse"]) as wheel:
        names = wheel.namelist()
        for name in names:
            top = name.split("/")[0]
            assert top in ("dtcourse",) or top.endswith(".dist-info"), name
            assert not name.startswith(("course/", "source/", "tests/", "release/")), name
            text = wheel.read(name).decode("utf-8", errors="replace")
            for forbidden in FORBIDDEN_TEXT:
                assert forbidden not in text, f"{name} contains {forbidden!r}"
    for phase in PHASES:
        assert f"dtcourse/runtime/notebooks/{phase}/{phase}.ipynb" in names
    assert "dtcourse/runtime/syllabus.toml" in names
    assert not any(name.startswith("dtcourse_instructor") for name in names)


def test_only_student_dependencies_are_installed(student_env: dict) -> None:
    packages = set(student_env["packages"])
    print("student environment:", ", ".join(sorted(packages)))
    for instructor_only in ("nbgrader", "papermill", "jupytext", "psycopg", "dtcourse-instructor"):
        assert instructor_only not in packages
    for needed in ("dtcourse", "jupyterlab", "ipywidgets", "matplotlib", "pandas"):
        assert needed in packages


def test_lab_dry_run_copies_the_three_notebooks(student_env: dict) -> None:
    workspace = student_env["base"] / "workspace"
    done = _lab_dry_run(student_env, workspace)
    for phase in PHASES:
        assert f"{phase}.ipynb" in done.stdout
        assert (workspace / phase / f"{phase}.ipynb").is_file()
    assert "would run:" in done.stdout
    where = _run(
        [str(student_env["python"]), "-c",
         "import dtcourse, sys; print(dtcourse.__file__); "
         "import importlib.util as u; print(u.find_spec('dtcourse_instructor'))"],
        cwd=student_env["cwd"], env=student_env["env"],
    ).stdout.split()  # fmt: skip
    assert str(REPO) not in where[0] and "site-packages" in where[0]
    assert where[1] == "None"


@pytest.mark.parametrize("phase", PHASES)
def test_each_release_notebook_runs_to_its_first_exercise(student_env: dict, phase: str) -> None:
    workspace = student_env["base"] / "workspace"
    if not (workspace / phase).exists():
        _lab_dry_run(student_env, workspace)
    source = workspace / phase / f"{phase}.ipynb"
    out = student_env["base"] / f"{phase}.out.ipynb"
    done = subprocess.run(
        [str(student_env["python"]), "-m", "papermill", str(source), str(out), "-k", "python3",
         "--cwd", str(source.parent), "-p", "ci", "True"],
        cwd=student_env["cwd"], env=student_env["env"], capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    executed = nbformat.read(out, as_version=4)
    errors = [
        (index, output)
        for index, cell in enumerate(executed.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    if done.returncode == 0:
        assert not errors
        return
    assert len(errors) == 1, done.stderr[-2000:]
    index, error = errors[0]
    assert error["ename"] == "NotImplementedError", (error["ename"], error["evalue"])
    first_solution = next(
        i for i, cell in enumerate(executed.cells) if "raise NotImplementedError" in cell.source
    )
    assert index >= first_solution, "a cell before the first exercise failed"


def test_no_public_object_of_the_wheel_answers_an_exercise(student_env: dict) -> None:
    """The answer search: every public function and class against every visible check."""
    # The search calls every public function with whatever a check passes, so some start
    # things (a throwaway PostgreSQL cluster, say): give it a folder of its own and clear
    # whatever it left there.
    scratch = student_env["base"] / "search-tmp"
    scratch.mkdir()
    scratch.chmod(0o755)  # a cluster's server user must traverse it
    env = {**student_env["env"], "TMPDIR": str(scratch)}
    try:
        done = _run(
            [str(student_env["python"]), str(REPO / "tests" / "answer_search.py")],
            cwd=student_env["cwd"],
            env=env,
            timeout=3600,
        )
    finally:
        stop_servers(postgres_servers(scratch))
        shutil.rmtree(scratch, ignore_errors=True)
    report = json.loads(done.stdout)
    broken = [name for name in report["objects"] if "import failed" in name]
    assert not broken, broken
    print(f"answer search: {len(report['objects'])} public objects, {report['seconds']} s")
    for exercise, outcome in report["exercises"].items():
        print(
            f"  {exercise}: {len(outcome['fail'])} fail, {len(outcome['timeout'])} out of time"
            f" {outcome['timeout']}, {len(outcome['pass'])} pass {outcome['pass']}"
        )
    exercises = report["exercises"].items()
    answered = {ex: outcome["pass"] for ex, outcome in exercises if outcome["pass"]}
    assert not answered, f"package objects answer exercises: {answered}"
