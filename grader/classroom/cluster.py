"""`grade batch --scheduler ADDRESS`: the same batch on a Dask cluster (the client side).

Nothing on a worker needs the client's paths: the client reads each submission with the local
staging rules (`ShippedSubmission.read`) and sends its exercise files' bytes with the task; the
worker grades with its own installed kit (see `grader.classroom.cluster_worker`) and answers
with the scorecard as JSON, which the client checks before writing any output file.

Before grading, every worker's grader version, suite digest and data manifest must equal the
client's; the first that differs is named in a one-line refusal. A task whose worker dies is
rescheduled by Dask; a submission that kills its own grading process gets an error scorecard
from the worker (no retry). Losing the scheduler ends the batch with one line: the scorecards
written so far stay, and `--resume` grades the rest.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from typing import Any

from grader.classroom.cluster_worker import (
    PLUGIN_NAME,
    GraderPlugin,
    grade_task,
    identity_difference,
    kit_identity,
    worker_identity,
)
from grader.course.kit import Kit
from grader.grading.options import GradingOptions, options_to_dict
from grader.grading.runner import error_scorecard
from grader.grading.scorecard import Scorecard
from grader.grading.staging import ShippedSubmission

WORKER_WAIT_S = 60.0
"""How long the client waits for a first worker to join the scheduler."""


class ClusterError(Exception):
    """The cluster cannot grade this batch (one line, for the user)."""


def check_workers(client: Any, kit: Kit, scheduler: str) -> int:
    """Refuse (`ClusterError`) unless every worker grades with the client's grader version,
    suites and data; returns the cluster's grading slots (worker threads)."""
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError:
        raise ClusterError(
            f"no Dask worker joined the scheduler at {scheduler} within {WORKER_WAIT_S:.0f} s"
        ) from None
    ours = kit_identity(kit)
    answers = client.run(worker_identity, on_error="return")
    for address in sorted(answers):
        answer = answers[address]
        if isinstance(answer, BaseException):
            difference = f"cannot run the grader ({type(answer).__name__}: {answer})"
        else:
            difference = identity_difference(ours, answer)
        if difference:
            raise ClusterError(f"Dask worker {address} differs from this kit: {difference}")
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return sum(int(w.get("nthreads", 1)) for w in workers)


def validated_card(data: Any, name: str, kit: Kit, digest: str) -> Scorecard:
    """The worker's answer as a `Scorecard`, if it is one for submission `name` made with our
    suites; `ValueError` otherwise (the client never writes what it cannot vouch for)."""
    try:
        card = Scorecard.from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError):
        raise ValueError("the worker's scorecard is malformed") from None
    numbers = [card.score, card.max_score, card.duration_s]
    numbers += [n for ex in card.exercises for n in (ex.score, ex.max_score)]
    numbers += [n for ex in card.exercises for t in ex.tests for n in (t.points, t.max_points)]
    if not all(isinstance(n, int | float) and math.isfinite(n) for n in numbers):
        raise ValueError("the worker's scorecard has non-numeric scores")
    if card.submission != name or card.suite_digest != digest:
        raise ValueError("the worker's scorecard is for another submission or other suites")
    if card.status not in ("graded", "error") or card.isolation not in ("full", "reduced"):
        raise ValueError("the worker's scorecard has an unknown status")
    if [ex.slug for ex in card.exercises] != [ex.slug for ex in kit.exercises]:
        raise ValueError("the worker's scorecard has other exercises")
    if not 0 <= card.score <= card.max_score == kit.total_points:
        raise ValueError("the worker's scorecard has impossible scores")
    return card


def _task_request(kit: Kit, entry: Any, options: dict, identity: dict) -> bytes:
    submission = ShippedSubmission.read(entry.path, kit)
    request = {"name": entry.id, "submission": submission.to_dict(), "options": options}
    return json.dumps({**request, "expected": identity}).encode()


def _failed(kit: Kit, name: str, reason: str) -> Scorecard:
    return error_scorecard(kit, name, [ex.slug for ex in kit.exercises], reason, 0.0)


def run_on_dask(
    kit: Kit,
    entries: list,
    scheduler: str,
    options: GradingOptions,
    on_card: Callable[[Scorecard], None],
) -> None:
    """Grade `entries` (with `.id`, `.path`) on the cluster at `scheduler`, calling `on_card`
    with each scorecard as it arrives. At most a few tasks per grading slot are in flight, so
    the client holds only those submissions' bytes and the scheduler only those tasks."""
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    try:
        client = Client(scheduler, timeout=15)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    done = 0
    try:
        slots = check_workers(client, kit, scheduler)
        client.register_plugin(GraderPlugin(), name=PLUGIN_NAME)
        identity = kit_identity(kit)
        data = options_to_dict(options)
        data.pop("cache_dir")  # the worker's own
        batch = uuid.uuid4().hex[:12]
        todo = list(enumerate(entries))
        in_flight: dict[Any, Any] = {}
        stream = as_completed()

        def submit_next() -> None:
            index, entry = todo.pop(0)
            future = client.submit(
                grade_task, _task_request(kit, entry, data, identity),
                key=f"fslab-grade-{batch}-{index}", pure=False, retries=1,
            )  # fmt: skip
            in_flight[future] = entry
            stream.add(future)

        for _ in range(min(len(todo), 2 * max(1, slots) + 2)):
            submit_next()
        for future in stream:
            entry = in_flight.pop(future)
            if future.status == "cancelled":
                raise FutureCancelledError(future.key, "scheduler connection lost")
            if future.status == "error":
                exc = future.exception()
                if isinstance(exc, KilledWorker):
                    reason = "every Dask worker that tried to grade it died"
                else:
                    reason = f"grading failed on the cluster ({type(exc).__name__}: {exc})"
                card = _failed(kit, entry.id, reason[:500])
            else:
                answer = json.loads(future.result())
                if "mismatch" in answer:
                    raise ClusterError(f"Dask {answer['mismatch']}")
                try:
                    card = validated_card(
                        answer.get("card"), entry.id, kit, identity["suite_digest"]
                    )
                except ValueError as exc:
                    card = _failed(kit, entry.id, str(exc))
            on_card(card)
            done += 1
            if todo:
                submit_next()
    except (FutureCancelledError, OSError, TimeoutError) as exc:
        raise ClusterError(
            f"lost the Dask scheduler at {scheduler} after {done} of {len(entries)} "
            f"submissions ({type(exc).__name__}); their scorecards are written: run the same "
            "command with --resume to grade the rest"
        ) from None
    finally:
        client.close()
