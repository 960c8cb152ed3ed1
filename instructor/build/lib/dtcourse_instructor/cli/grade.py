"""``dtcourse grade``: autograde submissions, write feedback, a grades table and a plot."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grade",
        help="autograde submitted/ with nbgrader; write grades.csv, a plot and feedback",
        description="Autograde every submission in submitted/<student>/<phase>/ (re-grading "
        "with --force), generate feedback without hidden tests, and write grades/grades.csv "
        "and grades/grades.png. A submission that cannot be graded is reported with a reason "
        "and does not stop the others.",
    )
    parser.add_argument("--root", type=Path, help="course folder (default: this repository)")
    parser.add_argument("--phase", action="append", help="only this phase (repeatable)")
    parser.add_argument("--student", action="append", help="only this student (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dtcourse.runtime.syllabus import load_syllabus
    from dtcourse_instructor.authoring import select_phases
    from dtcourse_instructor.course_folder import course_root
    from dtcourse_instructor.grading import grade, plot_scores, scores_frame

    root = course_root(args.root)
    print(f"course folder: {root}")
    syllabus = load_syllabus()
    assignments = [item.assignment for item in select_phases(syllabus, args.phase)]
    report = grade(root, assignments, args.student)
    frame = scores_frame(report, syllabus)
    out = root / "grades"
    out.mkdir(exist_ok=True)
    frame.to_csv(out / "grades.csv", index=False)
    if not frame.empty:
        plot_scores(frame, out / "grades.png")
    totals = frame.groupby("student")[["score", "max_score"]].sum()
    for student, row in totals.iterrows():
        print(f"{student}: {row['score']:g} / {row['max_score']:g}")
    print(f"grades: {out / 'grades.csv'}, plot: {out / 'grades.png'}")
    print(f"feedback: {root / 'feedback'}")
    for student, assignment, reason in report.problems:
        print(f"not graded: {student} {assignment}: {reason}")
    return 1 if report.problems else 0
