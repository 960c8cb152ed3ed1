"""nbgrader configuration: the repository root is the course directory.

Every path is absolute and derived from this file's place, so nbgrader behaves the same
from any working directory and in temporary copies of the course.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

_root = Path(__file__).resolve().parent
c.CourseDirectory.root = str(_root)
c.CourseDirectory.db_url = f"sqlite:///{_root / 'gradebook.db'}"
# No course_id: students get notebooks through `dtcourse lab`, not nbgrader's exchange, and
# without one nbgrader does not probe (and complain about) an exchange folder.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# What a student gets where a solution was.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Model-checker tests may take a while; an infinite loop must still end.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Keep huge outputs from flooding feedback.
c.LimitOutput.max_lines = 300
c.LimitOutput.max_traceback = 40

# A correct cell keeps its points when the code it runs writes to stderr (a logged
# warning): that text is kept as marked stdout before the grades are saved.
from dtcourse_instructor.preprocessors import AUTOGRADE_PREPROCESSORS  # noqa: E402

c.Autograde.autograde_preprocessors = AUTOGRADE_PREPROCESSORS

# Feedback never shows hidden tests.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
