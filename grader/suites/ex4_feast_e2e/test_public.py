"""ex4_feast_e2e, public tests: the lesson's two traps, the repo's stores, and basic reads.

Once per file the grader calls, in the sandbox: `write_repo(repo_dir, data/user_features.parquet)`,
`apply_repo(repo_dir)` and `materialize_online(repo_dir, 2024-01-01, 2024-03-01)` on a fresh
folder; then each test reads from that repo through your functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grader.harness.feast_repo import END, FLOAT32_RTOL, REFS, SHORT, TTL, VIEW, Pipeline
from grader.sandbox.proxy import StudentError


@pytest.fixture(scope="module")
def data_dir(grading) -> Path:
    """The kit's data folder (the shared session-scoped fixture cannot use `grading`)."""
    return grading.kit.data_dir


@pytest.fixture(scope="module")
def pipeline(student, data_dir) -> Pipeline:
    return Pipeline(student, student.workdir / "repo_public", data_dir / "user_features.parquet")


@pytest.fixture(scope="module")
def user_data(data_dir) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "user_features.parquet")


def latest_row(data: pd.DataFrame, user: int, at: pd.Timestamp) -> pd.Series | None:
    """The user's newest row at or before `at`, at most the ttl old, or None."""
    at = at.tz_localize("UTC") if at.tzinfo is None else at
    mine = data[
        (data["user_id"] == user)
        & (data["event_timestamp"] <= at)
        & (data["event_timestamp"] >= at - TTL)
    ]
    return None if mine.empty else mine.loc[mine["event_timestamp"].idxmax()]


def failed(call: str, exc: StudentError) -> AssertionError:
    if exc.not_implemented:
        return AssertionError(f"Not done yet: {exc.function} still raises NotImplementedError.")
    where = f" ({exc.where})" if exc.where else ""
    return AssertionError(f"Called {call}: it raised {exc.type_name}: {exc.message}{where}")


def online(student, repo: str, ids: list[int], refs: list[str]) -> dict:
    call = f"online_features(repo_dir, {ids}, {refs})"
    try:
        got = student.online_features(repo, ids, refs)
    except StudentError as exc:
        raise failed(call, exc) from None
    assert isinstance(got, dict), (
        f"Called {call}: got a {type(got).__name__}, expected a dict of lists."
    )
    return {
        str(k): list(v) if isinstance(v, list | tuple | pd.Series) else v for k, v in got.items()
    }


def show(value) -> str:
    if value is None:
        return "None"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return repr(value)
    return "missing" if np.isnan(number) else f"{number:.7g}"


def missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def same(got, want) -> bool:
    """Equal up to float32 precision; None, NaN and NA all mean missing."""
    if missing(want):
        return missing(got)
    if missing(got) or isinstance(got, str):
        return False
    try:
        return bool(np.isclose(float(got), float(want), rtol=FLOAT32_RTOL, atol=0.0))
    except (TypeError, ValueError):
        return False


# Trap 1 ------------------------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.task(taskno=2)
def test_apply_repo_registers_the_view_instead_of_an_empty_list(pipeline):
    names = pipeline.need("write_repo", "apply_repo")
    summary = pipeline.need("summary")
    registered = [v["name"] for v in summary["feature_views"]]
    assert VIEW in registered, (
        f"Called apply_repo(repo_dir) on the repo write_repo wrote; afterwards the registry holds "
        f"the feature views {registered}, expected {VIEW!r}. This is the lesson's trap 1: "
        "store.apply([]) registers nothing; pass the entity, view and service objects to "
        "apply (or run `feast apply` in repo_dir)."
    )
    assert names == [VIEW], (
        f"Called apply_repo(repo_dir): it returned {names!r}, expected [{VIEW!r}], the sorted "
        "names of the feature views the registry holds."
    )


# The stores ---------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=1)
def test_the_repo_uses_duckdb_offline_and_sqlite_online_inside_repo_dir(pipeline):
    summary = pipeline.need("write_repo", "apply_repo", "summary")
    repo = Path(pipeline.repo).resolve()
    what = "Opened the repo write_repo wrote with FeatureStore(repo_path=repo_dir)"
    assert "duckdb" in summary["offline_store"].lower(), (
        f"{what}: its offline store is {summary['offline_store']!r}, expected 'duckdb', because "
        "the `file` store drops entity rows without a feature in the ttl and merges duplicate "
        "rows: a training frame must keep every row."
    )
    assert "sqlite" in summary["online_store"].lower(), (
        f"{what}: its online store is {summary['online_store']!r}, expected 'sqlite'."
    )
    for label in ("registry", "online"):
        path = summary[f"{label}_path"]
        inside = path is not None and "://" not in path and Path(path).is_relative_to(repo)
        assert inside, (
            f"{what}: its {label} {'store ' if label == 'online' else ''}file is {path!r}, "
            f"expected a file inside {str(repo)!r}, so that each repo keeps its own state."
        )


# Trap 2 ------------------------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.task(taskno=3)
def test_online_features_after_materialize_online_are_the_values_at_end(
    pipeline, student, user_data
):
    pipeline.need("write_repo", "apply_repo", "materialize_online")
    ids = [1, 2, 3]
    got = online(student, pipeline.repo, ids, REFS)
    values = [got.get(name) for name in SHORT]
    assert any(isinstance(v, list) and any(x is not None for x in v) for v in values), (
        f"Called materialize_online(repo_dir, 2024-01-01, {END:%Y-%m-%d}) then "
        f"online_features(repo_dir, {ids}, ...): every value is None, so the online store is "
        "empty. This is the lesson's trap 2: the first materialize_incremental starts at "
        "now - ttl, which on 2024 data loads nothing; use store.materialize(start, end)."
    )
    for i, user in enumerate(ids):
        row = latest_row(user_data, user, pd.Timestamp(END))
        for name in SHORT:
            column = got.get(name)
            value = column[i] if isinstance(column, list) and len(column) == len(ids) else "?"
            assert same(value, float(row[name])), (
                f"Called materialize_online(repo_dir, 2024-01-01, {END:%Y-%m-%d}) then "
                f"online_features(repo_dir, {ids}, ...): user {user}'s {name} is {show(value)}, "
                f"expected {show(row[name])}, the value of its last row at or before "
                f"{END:%Y-%m-%d}."
            )


# Reads -------------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=5)
def test_online_features_follow_user_ids_order_with_none_for_unknown_users(
    pipeline, student, user_data
):
    pipeline.need("write_repo", "apply_repo", "materialize_online")
    ids = [7, 1, 9999, 7, 500]
    refs = REFS[:3]
    got = online(student, pipeline.repo, ids, refs)
    call = f"online_features(repo_dir, {ids}, {refs})"
    keys = ["user_id", *SHORT[:3]]
    assert list(got) == keys, f"Called {call}: got the keys {list(got)}, expected {keys}."
    assert got["user_id"] == ids, (
        f"Called {call}: got user_id {got['user_id']}, expected {ids}: the ids in the order "
        "given, duplicates kept."
    )
    for name in SHORT[:3]:
        column = got[name]
        assert isinstance(column, list) and len(column) == len(ids), (
            f"Called {call}: {name} is {column!r}, expected a list of {len(ids)} values, one "
            "per id."
        )
        assert column[2] is None, (
            f"Called {call}: {name} for the unknown user 9999 is {show(column[2])}, expected "
            "None: the online store has nothing for that user."
        )
        assert same(column[0], column[3]), (
            f"Called {call}: user 7 is asked for twice, but {name} is {show(column[0])} at "
            f"position 0 and {show(column[3])} at position 3."
        )
    # Values must be the user's own (any date: the materialization window is judged elsewhere).
    for i, user in enumerate(ids):
        if user == 9999:
            continue
        value = got["daily_spend"][i]
        assert value is not None, (
            f"Called {call} after materialize_online: daily_spend of user {user} is None, "
            "expected a value: the online store knows every user 1..500."
        )
        own = user_data.loc[user_data["user_id"] == user, "daily_spend"].to_numpy()
        assert any(same(value, x) for x in own), (
            f"Called {call}: position {i} (user {user}) has daily_spend {show(value)}, which is "
            f"not one of user {user}'s values in the data: values must follow user_ids order."
        )


@pytest.mark.points(2)
@pytest.mark.task(taskno=4)
def test_training_frame_is_point_in_time_correct_in_entity_df_order(pipeline, student, user_data):
    pipeline.need("write_repo", "apply_repo")
    entity = pd.DataFrame(
        {
            "user_id": np.array([3, 1, 2, 1, 600, 5], dtype=np.int64),
            "event_timestamp": pd.to_datetime(
                [
                    "2024-02-10 12:00",
                    "2024-01-15 00:00",
                    "2024-03-01 00:00",
                    "2023-12-31 00:00",
                    "2024-02-01 00:00",
                    "2024-04-10 00:00",
                ]
            ),
            "label": [1, 0, 0, 1, 0, 1],
        },
        index=[40, 41, 42, 43, 44, 45],
    )
    refs = REFS[:2]
    call = "training_frame(repo_dir, entity_df, features) with 6 rows in no particular order"
    try:
        frame = student.training_frame(pipeline.repo, entity, refs, _timeout=120)
    except StudentError as exc:
        raise failed(call, exc) from None
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(entity), (
        f"Called {call}: got "
        + (f"{len(frame)} rows" if isinstance(frame, pd.DataFrame) else type(frame).__name__)
        + ", expected a frame with one row per entity_df row."
    )
    for name in SHORT[:2]:
        assert name in frame.columns, (
            f"Called {call}: the frame has the columns {list(frame.columns)}, expected a column "
            f"{name!r} (the short name of {VIEW}:{name})."
        )
    for i in range(len(entity)):
        user, at = entity["user_id"].iloc[i], entity["event_timestamp"].iloc[i]
        row = latest_row(user_data, user, at)
        for name in SHORT[:2]:
            value = frame[name].iloc[i]
            want = None if row is None else float(row[name])
            assert same(value, want), (
                f"Called {call}: row {i} (user {user} at {at}) has {name} = {show(value)}, "
                "expected "
                + (
                    f"{show(want)}, from the user's last row at or before that time"
                    if want is not None
                    else "missing, because the user has no row in the 7 days up to that time"
                )
                + ". Rows must come back in entity_df's order (Feast does not keep it)."
            )


# No skew (task 6) ----------------------------------------------------------------------


def training(student, pipeline: Pipeline, entity: pd.DataFrame, call: str) -> pd.DataFrame:
    pipeline.need("write_repo", "apply_repo")
    try:
        frame = student.training_frame(pipeline.repo, entity, REFS, _timeout=180)
    except StudentError as exc:
        raise failed(call, exc) from None
    assert isinstance(frame, pd.DataFrame), (
        f"Called {call}: got a {type(frame).__name__}, expected a pandas DataFrame."
    )
    return frame


def floats(values) -> np.ndarray:
    """Online values as float64, None as missing."""
    out = []
    for v in values:
        try:
            out.append(np.nan if v is None else float(v))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.array(out, dtype="float64")


def _show(x: float) -> str:
    return "missing" if np.isnan(x) else f"{x:g}"


@pytest.mark.points(2)
@pytest.mark.task(taskno=6)
def test_online_values_at_end_equal_the_training_frame_at_end_for_every_user(
    student, pipeline, user_data
):
    pipeline.need("write_repo", "apply_repo", "materialize_online")
    users = [int(u) for u in np.random.default_rng(5).permutation(np.arange(1, 501))]
    at_end = pd.DataFrame({"user_id": users, "event_timestamp": [END] * len(users)})
    frame = training(student, pipeline, at_end, f"training_frame for all 500 users at {END}")
    call = "online_features(repo_dir, <all 500 users, shuffled>, <the six features>)"
    try:
        online = student.online_features(pipeline.repo, users, REFS, _timeout=120)
    except StudentError as exc:
        raise failed(call, exc) from None
    assert isinstance(online, dict), f"Called {call}: got a {type(online).__name__}, not a dict."
    returned = [int(u) for u in list(online.get("user_id", []))]
    assert sorted(returned) == sorted(users), (
        f"Called {call}: its 'user_id' list holds {len(returned)} ids, expected the 500 asked."
    )
    # Order is judged elsewhere: compare user by user.
    position = {user: i for i, user in enumerate(returned)}
    order = [position[user] for user in users]
    assert "user_id" in frame.columns, (
        f"Called training_frame for all 500 users at {END:%Y-%m-%d}: the result has no "
        "'user_id' column, expected entity_df's columns, then the features."
    )
    offline = frame.drop_duplicates("user_id").set_index("user_id").reindex(users)
    latest = user_data[user_data["event_timestamp"] == pd.Timestamp(END, tz="UTC")]
    truth = latest.set_index("user_id").reindex(users)
    for name in SHORT:
        column = list(online.get(name, [None] * len(users)))
        served = floats(column)[order] if len(column) == len(users) else floats([None] * 500)
        assert not np.isnan(served).all(), (
            f"Called materialize_online(repo_dir, 2024-01-01, {END:%Y-%m-%d}) then {call}: "
            f"{name} is None for every user: nothing was loaded online."
        )
        trained = pd.to_numeric(offline[name], errors="coerce").astype("float64").to_numpy()
        want = truth[name].astype("float64").to_numpy()
        skew = ~np.isclose(served, trained, rtol=FLOAT32_RTOL, equal_nan=False)
        if skew.any():
            i = int(np.flatnonzero(skew)[0])
            online_ok = np.isclose(served[i], want[i], rtol=FLOAT32_RTOL)
            culprit = (
                "training_frame gives another value than the data at that time (are its rows "
                "back in entity_df's order?)"
                if online_ok
                else "the online store serves another value than the data at end (did "
                "materialize_online load exactly [start, end]?)"
            )
            raise AssertionError(
                f"Called {call} after materialize_online(..., {END:%Y-%m-%d}), and "
                f"training_frame for the same users at {END:%Y-%m-%d}: {int(skew.sum())} users "
                f"differ in {name!r} (user {users[i]}: online {_show(served[i])}, training "
                f"{_show(trained[i])}, the data at {END:%Y-%m-%d} {_show(want[i])}). That is "
                f"training-serving skew: {culprit}."
            )
        wrong = ~np.isclose(served, want, rtol=FLOAT32_RTOL)
        assert not wrong.any(), (
            f"Called {call} and training_frame at {END:%Y-%m-%d}: they agree, but user "
            f"{users[int(np.flatnonzero(wrong)[0])]}'s {name} is "
            f"{_show(served[int(np.flatnonzero(wrong)[0])])}, expected "
            f"{_show(want[int(np.flatnonzero(wrong)[0])])}, the user's row at {END:%Y-%m-%d}."
        )
