"""Trusted helper code that the sandboxed worker runs on a student's module.

It turns objects that cannot travel as data (Feast definitions, stores) into data: registry
protobuf bytes, frames, plain values. Called by `StudentProxy.harness("module:function", ...)`
as `function(student_module, *args, **kwargs)`. It runs next to student code, so the grader
trusts nothing it returns beyond its type.

May import: `grader.sandbox` (its errors) and third-party packages; never `grader.grading`.
"""
