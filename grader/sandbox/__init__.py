"""Running untrusted code: bubblewrap and its fallback, resource limits, the kernel-enforced
budgets of a submission (control groups, a sized private folder), the seccomp filter,
the warm worker factory (zygote), the worker that loads student modules, the data-only
protocol between them, and the trusted side's proxy that calls into a worker.

May import: the standard library and third-party packages only; nothing else of `grader`
(it is what every other part builds on, and the worker imports it next to student code).
"""
