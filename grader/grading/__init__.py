"""Grading one submission: staging its files, finding and running the suites, the oracle
cache, the scorecard model and its renderings, and the forked child that grades.

May import: `grader.sandbox`, `grader.course`; never `grader.classroom` or `grader.cli`.
"""
