"""Feature Store Lab: course kit and grader for the lesson "Feature Stores with Feast"."""

__version__ = "0.1.0"
