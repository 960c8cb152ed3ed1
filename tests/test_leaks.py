"""The suite's own guard: a test that leaves a temporary folder fails the run.

(A leaked PostgreSQL server is tested in db/test_pgcluster.py, beside the cluster.)
"""

from __future__ import annotations

from leak_support import run_inner_suite


def test_a_leaked_temporary_folder_fails_the_session(tmp_path):
    result = run_inner_suite(tmp_path, (
        "import tempfile\n"
        "def test_leaks():\n"
        "    tempfile.mkdtemp(prefix='dtcourse-grading-')\n"
    ))
    assert result.returncode != 0, result.stdout
    assert "temporary folder dtcourse-grading-" in result.stdout
    assert "was left behind" in result.stdout


def test_a_clean_session_passes(tmp_path):
    result = run_inner_suite(tmp_path, (
        "import tempfile\n"
        "def test_cleans_up():\n"
        "    with tempfile.TemporaryDirectory(prefix='dtcourse-run-'):\n"
        "        pass\n"
    ))
    assert result.returncode == 0, result.stdout + result.stderr
