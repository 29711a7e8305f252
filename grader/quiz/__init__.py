"""The interview self-quiz (`grade quiz`): the question bank (TOML data), the scorer,
per-user progress, and its terminal session.

May import: nothing of `grader` but itself.
"""
