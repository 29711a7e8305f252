"""The instructor's verbs over many submissions: batch (local or on a Dask cluster), the
Gradescope bundle, the class report, the student release, the maintainer's verify and bench.

May import: `grader.grading`, `grader.sandbox`, `grader.course`; never `grader.cli`.
"""
