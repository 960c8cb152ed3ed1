"""The instructor's side of dtcourse: reference solutions, hidden-test logic, building the
notebooks, running them with papermill and grading with nbgrader.

It imports ``dtcourse``; ``dtcourse`` never imports it.
"""
