"""Gradescope results.json reads well, is plain text and validates against the kit's schema;
the container sizing reads cgroup limits; the host-namespace seccomp mode refuses new
sockets and IPC."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jsonschema
import pytest

from grader.grading.gradescope_results import SCHEMA_PATH, plain, render, sentence
from grader.grading.scorecard import ExerciseResult, Scorecard
from grader.grading.scorecard import TestResult as Result
from grader.sandbox.container import (
    MIB,
    BudgetError,
    cgroup_memory_limit,
    container_memory,
    memory_budget,
)

SCHEMA = json.loads(SCHEMA_PATH.read_text())
TITLES = {"ex1_fraud_design": "Design the views", "ex2_pit_join": "A point-in-time join"}


def card(**changes) -> Scorecard:
    passed = Result(
        "ex2_pit_join::test_a_row_from_the_future_is_never_used", "public", 2.0, 2.0,
        "passed", "Passed.", 0.1,
    )  # fmt: skip
    failed = Result(
        "ex2_pit_join::test_ties_go_to_the_latest_created_timestamp", "hidden", 0.0, 3.0,
        "error", "pit_join raised ValueError: \x1b[31mboom\x1b[0m\x00 at line 3\r\n", 0.1,
    )  # fmt: skip
    failed.task = 4  # type: ignore[attr-defined]  # as the scorecard's optional `task`
    data = dict(
        submission="alice\x07", graded_at="2026-01-01T00:00:00Z", grader_version="0.1.0",
        suite_digest="sha256:abc", status="graded", error=None, score=2.0, max_score=55.0,
        duration_s=12.345,
        exercises=[
            ExerciseResult("ex1_fraud_design", 0.0, 25.0, "error", "fraud_design.py: bad", []),
            ExerciseResult("ex2_pit_join", 2.0, 30.0, "failed", None, [passed, failed]),
        ],
        isolation="reduced",
    )  # fmt: skip
    data.update(changes)
    return Scorecard(**data)  # type: ignore[arg-type]


def test_results_validate_against_the_kits_schema():
    results = render(card(), titles=TITLES)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(results, SCHEMA)
    assert {"score", "execution_time", "output", "output_format", "visibility",
            "stdout_visibility", "tests"} <= set(results)  # fmt: skip


def test_the_schema_rejects_pytest_ids_control_characters_and_unknown_statuses():
    good = render(card(), titles=TITLES)
    for bad_test in (
        {"name": "ex2_pit_join::test_x"},
        {"output": "red \x1b[31m"},
        {"status": "error"},
        {"number": "ex2_pit_join"},
    ):
        broken = json.loads(json.dumps(good))
        broken["tests"][1].update(bad_test)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)


def test_test_names_are_written_for_people_with_exercise_task_and_sentence():
    tests = render(card(), titles=TITLES)["tests"]
    names = [t["name"] for t in tests]
    assert names[1] == "2. A point-in-time join: A row from the future is never used"
    assert names[2] == ("2. A point-in-time join, task 4: Ties go to the latest created timestamp")
    assert sentence("ex3::test_status_is_stale[view-a]") == "Status is stale (view-a)"


def test_numbers_sort_in_course_order_and_each_exercise_is_accounted_for():
    tests = render(card(), titles=TITLES)["tests"]
    numbers = [t["number"] for t in tests]
    assert numbers == ["1.00", "2.01", "2.02"] == sorted(numbers)
    ungraded = tests[0]
    assert ungraded["max_score"] == 25.0 and ungraded["score"] == 0
    assert "fraud_design.py: bad" in ungraded["output"]


def test_hidden_tests_follow_the_visibility_setting_and_errors_are_labelled():
    tests = render(card(), titles=TITLES, hidden_visibility="after_published")["tests"]
    assert [t["visibility"] for t in tests[1:]] == ["visible", "after_published"]
    assert tests[2]["status"] == "failed" and tests[2]["output"].startswith("Error: ")
    assert render(card())["tests"][2]["visibility"] == "after_due_date"
    with pytest.raises(ValueError):
        render(card(), hidden_visibility="sometimes")


def test_text_from_a_submission_reaches_gradescope_as_plain_text():
    results = render(card(), titles=TITLES)
    out = results["tests"][2]["output"]
    assert out == "Error: pit_join raised ValueError: boom at line 3", "whole escape sequences go"
    assert results["extra_data"]["submission"] == "alice"
    assert results["output_format"] == "text" and results["tests"][0]["output_format"] == "text"
    assert plain("a\ud800b\x9bc\td\n") == "a\ufffdb\td\n"  # \x9bc is a whole CSI sequence
    assert "reduced" in results["output"] and "Total: 2/55" in results["output"]


def test_the_cgroup_v2_limit_is_the_smallest_along_the_path(tmp_path):
    leaf = tmp_path / "a" / "b"
    leaf.mkdir(parents=True)
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "a" / "memory.max").write_text(f"{768 * MIB}\n")
    (leaf / "memory.max").write_text("max\n")
    assert cgroup_memory_limit(tmp_path, "0::/a/b\n") == 768 * MIB
    assert cgroup_memory_limit(tmp_path, "0::/\n") is None


def test_the_cgroup_v1_limit_ignores_the_unlimited_value(tmp_path):
    leaf = tmp_path / "memory" / "docker" / "c1"
    leaf.mkdir(parents=True)
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (leaf / "memory.limit_in_bytes").write_text(f"{805306368}\n")
    assert cgroup_memory_limit(tmp_path, "4:memory:/docker/c1\n1:cpu:/\n") == 805306368
    assert cgroup_memory_limit(tmp_path, "4:memory:/\n") is None
    # Never more than the machine has.
    assert container_memory(tmp_path, "4:memory:/\n") > 0


def test_worker_budgets_leave_room_for_the_trusted_side():
    budget = memory_budget(768 * MIB)
    assert 256 <= budget.worker_mib <= 768 - 256
    assert budget.worker_bytes + budget.reserve_bytes <= 768 * MIB
    assert memory_budget(64 << 30).worker_bytes == 4 << 30  # plenty: the sandbox's default
    assert memory_budget(4 << 30, workers=4).worker_bytes < memory_budget(4 << 30).worker_bytes
    with pytest.raises(BudgetError, match="too little"):
        memory_budget(400 * MIB)


NET_PROBE = textwrap.dedent(
    """
    import ctypes, os, platform, socket, sys
    os.environ["FSLAB_SECCOMP_HOST_NS"] = sys.argv[1]
    from grader.sandbox.seccomp import _ARCHES
    from grader.sandbox.worker import lock_down
    lock_down()
    out = []
    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        try:
            socket.socket(family, socket.SOCK_STREAM).close()
            out.append("open")
        except OSError:
            out.append("refused")
    libc = ctypes.CDLL(None, use_errno=True)
    numbers = _ARCHES[platform.machine()][1]
    IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0
    for get, rm, args in (
        ("shmget", "shmctl", (4096, IPC_CREAT | 0o600)),
        ("msgget", "msgctl", (IPC_CREAT | 0o600,)),
        ("semget", "semctl", (1, IPC_CREAT | 0o600)),
    ):
        ident = libc.syscall(numbers[get], IPC_PRIVATE, *args)
        out.append("refused" if ident == -1 else "open")
        if ident != -1:
            libc.syscall(numbers[rm], ident, IPC_RMID, 0)
    queue = libc.syscall(numbers["mq_open"], b"fslab-probe", os.O_CREAT | os.O_RDWR, 0o600, None)
    out.append("refused" if queue == -1 else "open")
    if queue != -1:
        os.close(queue)
        libc.syscall(numbers["mq_unlink"], b"fslab-probe")
    a, b = socket.socketpair()
    a.sendall(b"x")
    out.append(b.recv(1).decode())
    # A socketpair's datagram socket aimed at a service's (abstract) address: EPERM when
    # filtered, ECONNREFUSED (nobody listens) when not.
    d, _e = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for attempt in (lambda: d.sendto(b"x", "\\0fslab-probe"), lambda: d.connect("\\0fslab-probe")):
        try:
            attempt()
            out.append("open")
        except OSError as exc:
            out.append("refused" if exc.errno == 1 else "open")
    # Another process's descriptors (here our own): the job worker runs as the same user.
    pidfd = os.pidfd_open(os.getpid())
    fd = libc.syscall(numbers["pidfd_getfd"], pidfd, 0, 0)
    out.append("refused" if fd == -1 else "open")
    out.append("refused" if libc.prctl(3, 0, 0, 0, 0) == 0 else "open")  # PR_GET_DUMPABLE
    print(",".join(out))
    """
)


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("1", ",".join(["refused"] * 7 + ["x"] + ["refused"] * 4)),
        ("", ",".join(["open"] * 7 + ["x"] + ["open"] * 4)),
    ],
)
def test_the_host_namespace_filter_refuses_sockets_and_ipc_and_keeps_socketpairs(flag, expected):
    # Reduced isolation shares the host's network and IPC namespaces and its uid with the
    # job worker: new sockets, a socketpair aimed at a service, IPC objects (which outlive a
    # submission) and another process's memory or descriptors are refused.
    proc = subprocess.run(
        [sys.executable, "-c", NET_PROBE, flag], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == expected, proc.stderr
