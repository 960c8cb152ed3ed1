"""What runs in the student's lab: the syllabus, progress, widgets, notebook set-up, the
workspace and the visible checks."""
