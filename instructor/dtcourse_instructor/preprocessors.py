"""nbgrader preprocessors of the course, named in ``nbgrader_config.py``.

nbgrader scores a graded code cell 0 as soon as anything reaches stderr, even when every
check passed: a student's correct solution that logs a warning while the check runs it
would lose the cell. Before the grades are saved, text a graded cell wrote to stderr is
kept, marked, on stdout, so it still shows in the feedback but no longer decides the score;
a failing check is an ``error`` output and still scores 0.
"""

from __future__ import annotations

from typing import Any

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

__all__ = ["AUTOGRADE_PREPROCESSORS", "StderrKeptAsText"]

STDERR_MARK = "[written to stderr] "


class StderrKeptAsText(Preprocessor):
    """Turn stderr streams of graded code cells into marked stdout text."""

    # nbconvert runs a preprocessor only when it is enabled; this one always is.
    enabled = Bool(True).tag(config=True)

    def preprocess_cell(
        self, cell: NotebookNode, resources: dict[str, Any], index: int
    ) -> tuple[NotebookNode, dict[str, Any]]:
        graded = cell.get("metadata", {}).get("nbgrader", {}).get("grade", False)
        if cell.cell_type != "code" or not graded:
            return cell, resources
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["name"] = "stdout"
                lines = output.get("text", "").splitlines(keepends=True)
                output["text"] = "".join(STDERR_MARK + line for line in lines)
        return cell, resources


# nbgrader's own autograde pipeline with the stderr step placed before the grades are saved.
AUTOGRADE_PREPROCESSORS = [
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "dtcourse_instructor.preprocessors.StderrKeptAsText",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
