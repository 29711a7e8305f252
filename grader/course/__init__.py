"""The kit itself: its manifest (`course.toml`), the data generator, and the reference Feast
repo's setup.

May import: nothing of `grader` but itself.
"""
