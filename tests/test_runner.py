"""``dtcourse run`` and the papermill runner: only the tool's own lines, no folder left.

Tiny notebooks in a course copy keep this fast; test_course.py runs the real phases.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest
from dtcourse_instructor.course_folder import CONFIG_NAME
from dtcourse_instructor.runner import run_notebooks
from leak_support import leftover_folders
from nbformat.v4 import new_code_cell, new_notebook

from dtcourse.cli import main
from dtcourse.runtime.syllabus import load_syllabus

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[1]
PHASE1 = load_syllabus().phases[0].assignment


def tiny_notebook(*code: str) -> nbformat.NotebookNode:
    """A phase notebook's first cells (parameters, setup), then ``code``."""
    parameters = new_code_cell("seed = 0\nci = False\nprogress_store = None")
    parameters.metadata["tags"] = ["parameters"]
    setup = new_code_cell(
        "from dtcourse.runtime.notebook import setup\nsetup('0.0.0', progress_store)"
    )
    return new_notebook(
        cells=[parameters, setup, *(new_code_cell(text) for text in code)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )


def temporary_folders() -> set[str]:
    return set(leftover_folders(Path(tempfile.gettempdir())))


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A course copy whose phase 1 source notebook is tiny."""
    root = tmp_path / "clone"
    (root / "source" / PHASE1).mkdir(parents=True)
    shutil.copy(REPOSITORY / CONFIG_NAME, root)
    notebook = tiny_notebook("import os\nprint(os.environ['DTCOURSE_PROGRESS'])")
    nbformat.write(notebook, root / "source" / PHASE1 / f"{PHASE1}.ipynb")
    return root


def test_run_prints_only_its_own_progress_and_leaves_no_folder(clone, monkeypatch, capfd):
    monkeypatch.chdir(clone)
    before = temporary_folders()
    code = main(["run", "--phase", "1"])
    out, err = capfd.readouterr()  # the kernel's own output too
    assert code == 0, out + err
    assert err == ""  # e.g. no "[IPKernelApp] WARNING | Kernel is running over TCP"
    lines = out.splitlines()
    assert lines[0] == f"course folder: {clone.resolve()}"
    assert lines[1].startswith(f"{PHASE1}.ipynb: ") and lines[1].endswith(" s, ok")
    assert lines[2].startswith("1 of 1 notebooks ran in ")
    assert lines[2].endswith("outputs not kept (--out DIR keeps them)")
    assert len(lines) == 3
    assert temporary_folders() == before


def test_run_keeps_outputs_in_out_and_the_progress_store_was_temporary(clone, tmp_path, capfd):
    out_dir = tmp_path / "executed"
    assert main(["run", "--root", str(clone), "--phase", "1", "--out", str(out_dir)]) == 0
    assert f"outputs in {out_dir}" in capfd.readouterr().out
    executed = nbformat.read(out_dir / f"{PHASE1}.ipynb", as_version=4)
    store = Path(executed.cells[-1].outputs[0]["text"].strip())
    assert store.name == "progress.sqlite" and store.parent.name.startswith("dtcourse-run-")
    assert not store.parent.exists()  # removed once the notebook had run


def test_a_kernel_that_dies_is_reported_and_the_next_notebook_still_runs(tmp_path):
    notebooks = []
    for name, code in (("dies", "import os\nos._exit(1)"), ("fine", "print('fine')")):
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(tiny_notebook(code), path)
        notebooks.append(path)
    before = temporary_folders()
    lines: list[str] = []
    dies, fine = run_notebooks(notebooks, tmp_path / "out", report=lines.append)
    assert dies.error is not None and "DeadKernelError" in dies.error
    assert fine.error is None
    assert lines[0].startswith("dies.ipynb: ") and "FAILED" in lines[0]
    assert temporary_folders() == before
