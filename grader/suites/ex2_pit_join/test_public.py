"""Public tests of ex2_pit_join: one or more per README task (the as-of join, the TTL window,
ties, rows and columns as given, time zones, clear errors, scale).

Each test calls your `point_in_time_join` on small frames and checks the values it returns.
Run them with `grade check ex2_pit_join`.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from grader.harness.pit_checks import check, first_differences, frame, join, values, when
from grader.sandbox.proxy import StudentError, StudentTimeout

T0 = pd.Timestamp("2024-01-10")
DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
MINUTE = pd.Timedelta(minutes=1)
US = pd.Timedelta(microseconds=1)
FEAT_COLS = ["user_id", "event_timestamp", "spend"]
ENT_COLS = ["user_id", "event_timestamp", "label"]
FEATURES = [
    "daily_spend",
    "num_sessions",
    "avg_session_duration_min",
    "items_viewed",
    "items_purchased",
    "is_premium",
]


# -- helpers ------------------------------------------------------------------------------------


# -- 1. the as-of join --------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=1)
def test_a_feature_row_stamped_exactly_at_the_entity_timestamp_is_used(student):
    features = frame(
        [
            (1, T0 - DAY, 1.0),
            (1, T0, 2.0),
            (1, T0 + US, 3.0),
            (2, T0, 4.0),
            (2, T0 + DAY, 5.0),
        ],
        FEAT_COLS,
    )
    entities = frame([(1, T0, 0), (2, T0 + DAY, 1)], ENT_COLS)
    call = (
        f"Called point_in_time_join with entity rows (user 1 at {when(T0)}, user 2 at "
        f"{when(T0 + DAY)}) and feature rows of user 1 at {when(T0 - DAY)} (spend 1.0), "
        f"{when(T0)} (2.0) and {when(T0 + US)} (3.0), and of user 2 at {when(T0)} (4.0) and "
        f"{when(T0 + DAY)} (5.0)"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [2.0, 5.0],
        call,
        "a feature row stamped at exactly the entity timestamp was already known at that "
        "instant, so it is the one to use (feature_ts <= entity_ts, an inclusive bound; with "
        "merge_asof keep allow_exact_matches=True).",
    )


@pytest.mark.points(2)
@pytest.mark.task(taskno=1)
def test_a_feature_row_from_the_future_is_never_used(student):
    features = frame(
        [
            (1, T0 - DAY, 1.0),
            (1, T0 + US, 9.0),
            (1, T0 + DAY, 10.0),
            (2, T0 + US, 5.0),
            (2, T0 + 3 * DAY, 6.0),
        ],
        FEAT_COLS,
    )
    entities = frame([(1, T0, 0), (2, T0, 1)], ENT_COLS)
    call = (
        f"Called point_in_time_join with entity rows of users 1 and 2 at {when(T0)}; user 1 "
        f"has feature rows at {when(T0 - DAY)} (spend 1.0), {when(T0 + US)} (9.0) and "
        f"{when(T0 + DAY)} (10.0), user 2 only at {when(T0 + US)} (5.0) and "
        f"{when(T0 + 3 * DAY)} (6.0)"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [1.0, None],
        call,
        "a row stamped even one microsecond after the entity timestamp is the future (label "
        "leakage); take the newest row at or before the entity timestamp, and a missing value "
        "when there is none (merge_asof with direction='backward').",
    )


@pytest.mark.points(2)
@pytest.mark.task(taskno=1)
def test_each_entity_row_gets_the_newest_earlier_row_of_its_own_key(student):
    features = frame(
        [
            (1, T0, 1.0),
            (2, T0 + DAY, 20.0),
            (3, T0 + DAY, 300.0),
            (1, T0 + 2 * DAY, 3.0),
            (2, T0 + 3 * DAY, 40.0),
            (1, T0 + 4 * DAY, 5.0),
        ],
        FEAT_COLS,
    )
    entities = frame(
        [
            (1, T0 + 12 * HOUR, 0),
            (2, T0 + DAY + 12 * HOUR, 1),
            (1, T0 + 3 * DAY + HOUR, 0),
            (2, T0 + 3 * DAY + HOUR, 1),
            (3, T0 + 5 * DAY, 0),
        ],
        ENT_COLS,
    )
    call = (
        "Called point_in_time_join with feature rows of user 1 on days 0, 2 and 4 (spend 1.0, "
        "3.0, 5.0), user 2 on days 1 and 3 (20.0, 40.0) and user 3 on day 1 (300.0) after "
        f"{when(T0)}, and entity rows user 1 at day 0 12:00, user 2 at day 1 12:00, users 1 "
        "and 2 at day 3 01:00 and user 3 at day 5"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [1.0, 20.0, 3.0, 40.0, 300.0],
        call,
        "each entity row takes the newest feature row of the same user_id stamped at or before "
        "its own timestamp (merge_asof's by= keeps the users apart).",
    )


# -- 2. the TTL window --------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=2)
def test_a_ttl_leaves_out_rows_older_than_the_ttl(student):
    features = frame([(1, T0 - 10 * DAY, 1.0), (1, T0 - 3 * DAY, 2.0)], FEAT_COLS)
    entities = frame([(1, T0 + HOUR, 0)], ENT_COLS)
    base = (
        f"Called point_in_time_join with an entity row of user 1 at {when(T0 + HOUR)} and "
        f"feature rows at {when(T0 - 10 * DAY)} (spend 1.0) and {when(T0 - 3 * DAY)} (2.0)"
    )
    call = base + ", ttl=5 days"
    got = join(student, call, entities, features, ttl=timedelta(days=5))
    check(
        got,
        "spend",
        [2.0],
        call,
        "the row 3 days 1 hour old is inside the 5-day window and is the newest.",
    )
    call = base + ", ttl=2 days"
    got = join(student, call, entities, features, ttl=timedelta(days=2))
    check(
        got,
        "spend",
        [None],
        call,
        "both rows are older than the 2-day ttl, so the entity row gets a missing value; an "
        "older row never stands in for one that is too old (merge_asof's tolerance= does this).",
    )


# -- 4. rows and columns as given ---------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_rows_come_back_in_entity_order_with_the_entity_index(student):
    features = frame(
        [(2, T0 + DAY, 20.0), (1, T0, 10.0), (1, T0 + 2 * DAY, 12.0), (2, T0, 19.0)], FEAT_COLS
    )
    entities = frame(
        [
            (1, T0 + 3 * DAY, 0),
            (2, T0 + HOUR, 1),
            (1, T0 + DAY, 2),
            (2, T0 + 5 * DAY, 3),
        ],
        ENT_COLS,
    )
    entities.index = pd.Index(["d", "a", "c", "b"], name="example")
    call = (
        "Called point_in_time_join with unsorted entity rows indexed ['d', 'a', 'c', 'b'] "
        "(user 1 on day 3, user 2 on day 0 01:00, user 1 on day 1, user 2 on day 5) and "
        "unsorted feature rows (user 2: day 1 = 20.0, day 0 = 19.0; user 1: day 0 = 10.0, "
        "day 2 = 12.0)"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [12.0, 19.0, 10.0, 20.0],
        call,
        "the output rows follow entity_df's row order, not the sorted order merge_asof works "
        "in: remember each row's position and put the rows back.",
    )
    check(got, "label", [0, 1, 2, 3], call, "the entity columns stay in entity_df's row order.")
    index = list(got.index)
    assert index == ["d", "a", "c", "b"], (
        f"{call}; got the index {index}, expected ['d', 'a', 'c', 'b']: the result keeps "
        "entity_df's own index (restore it after sorting)."
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_unknown_keys_get_missing_feature_values(student):
    features = frame([(1, T0, 1.0), (2, T0, 2.0)], FEAT_COLS)
    entities = frame([(99, T0 + DAY, 0), (1, T0 + DAY, 1), (0, T0 + DAY, 0)], ENT_COLS)
    call = (
        "Called point_in_time_join with entity rows of users 99, 1 and 0 on "
        f"{when(T0 + DAY)} and feature rows of users 1 and 2 only (spend 1.0 and 2.0 on "
        f"{when(T0)})"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [None, 1.0, None],
        call,
        "a user with no feature rows keeps its entity row and gets a missing value (a left "
        "join, never an inner join).",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_feature_columns_are_every_other_feature_df_column_in_order_or_feature_names(student):
    features = pd.DataFrame(
        {
            "b_feature": [1.5, 2.5],
            "user_id": [1, 1],
            "a_feature": ["x", "y"],
            "event_timestamp": [T0, T0 + DAY],
            "c_count": [10, 20],
        }
    )
    entities = frame([(1, T0 + 2 * DAY, 0)], ENT_COLS)
    call = (
        "Called point_in_time_join with feature_df columns [b_feature, user_id, a_feature, "
        "event_timestamp, c_count] and entity_df columns [user_id, event_timestamp, label]"
    )
    got = join(student, call, entities, features)
    want = ENT_COLS + ["b_feature", "a_feature", "c_count"]
    assert list(got.columns) == want, (
        f"{call}; got the columns {list(got.columns)}, expected {want}: the entity columns "
        "first, then every feature_df column except the key and the timestamp columns, in "
        "feature_df's order, each once and no helper columns."
    )
    check(got, "a_feature", ["y"], call, "the newest row (day 1) gives the values.")
    check(got, "c_count", [20], call, "the newest row (day 1) gives the values.")
    call += ", feature_names=['c_count', 'b_feature']"
    got = join(student, call, entities, features, feature_names=["c_count", "b_feature"])
    want = ENT_COLS + ["c_count", "b_feature"]
    assert list(got.columns) == want, (
        f"{call}; got the columns {list(got.columns)}, expected {want}: feature_names chooses "
        "the feature columns and their order."
    )
    check(got, "b_feature", [2.5], call, "the newest row (day 1) gives the values.")


# -- 6. clear errors ----------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=6)
def test_a_missing_column_raises_value_error_naming_it(student):
    features = frame([(1, T0, 1.0)], ["uid", "event_timestamp", "spend"])
    entities = frame([(1, T0 + DAY, 0)], ENT_COLS)
    call = (
        "Called point_in_time_join with the default entity_key='user_id' on a feature_df "
        "whose columns are [uid, event_timestamp, spend] (no user_id)"
    )
    try:
        got = student.point_in_time_join(entities, features)
    except StudentError as exc:
        if exc.not_implemented:
            raise
        assert exc.is_a("ValueError"), (
            f"{call}; it raised {exc.type_name}: {exc.message}, expected a ValueError naming "
            "the missing column 'user_id': check the columns yourself before the join."
        )
        assert "user_id" in exc.message, (
            f"{call}; it raised ValueError({exc.message!r}), which does not name the missing "
            "column 'user_id': say which column is missing from which frame."
        )
        return
    raise AssertionError(
        f"{call}; it returned a value of type {type(got).__name__} instead of raising a "
        "ValueError naming the missing column 'user_id'."
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=3)
def test_ties_go_to_the_latest_created_timestamp(student):
    cols = ["user_id", "event_timestamp", "created", "spend"]
    features = frame(
        [
            (1, T0, T0 + 5 * MINUTE, 1.0),
            (2, T0, T0 + 1 * MINUTE, 3.0),
            (1, T0, T0 + 2 * MINUTE, 2.0),
            (2, T0, T0 + 9 * MINUTE, 4.0),
        ],
        cols,
    )
    entities = frame([(1, T0 + DAY, 0), (2, T0 + DAY, 1)], ENT_COLS)
    call = (
        "Called point_in_time_join with created_timestamp_col='created' and two feature rows "
        f"per user stamped {when(T0)}: user 1 created 00:05 (spend 1.0) then created 00:02 "
        "(2.0); user 2 created 00:01 (3.0) then created 00:09 (4.0); entity rows of both users "
        "a day later"
    )
    got = join(student, call, entities, features, created_timestamp_col="created")
    check(
        got,
        "spend",
        [1.0, 4.0],
        call,
        "among rows with the same key and event timestamp, the latest created timestamp wins "
        "(the restated snapshot), whatever the row order: sort by (event timestamp, created) "
        "so that the winner comes last.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=5)
def test_aware_timestamps_in_any_zone_compare_as_instants_and_naive_means_utc(student):
    paris = pd.Timestamp("2024-01-10 01:00", tz="Europe/Paris")  # 00:00 UTC
    features = frame([(1, paris, 1.0), (1, paris + 2 * HOUR, 2.0)], FEAT_COLS)
    tokyo = [
        pd.Timestamp("2024-01-10 08:59", tz="Asia/Tokyo"),  # 23:59 UTC the day before
        pd.Timestamp("2024-01-10 09:01", tz="Asia/Tokyo"),  # 00:01 UTC
        pd.Timestamp("2024-01-10 11:30", tz="Asia/Tokyo"),  # 02:30 UTC
    ]
    entities = frame([(1, t, 0) for t in tokyo], ENT_COLS)
    call = (
        "Called point_in_time_join with feature rows in Europe/Paris time at 2024-01-10 01:00 "
        "(spend 1.0) and 03:00 (2.0), and entity rows in Asia/Tokyo time at 2024-01-10 08:59, "
        "09:01 and 11:30"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [None, 1.0, 2.0],
        call,
        "tz-aware timestamps compare as instants: Tokyo 08:59 is 23:59 UTC the day before, "
        "before Paris 01:00 (00:00 UTC). Convert both sides to UTC (pd.to_datetime(..., "
        "utc=True)) before comparing.",
    )

    ny = pd.Timestamp("2024-01-09 19:00", tz="America/New_York")  # 00:00 UTC on the 10th
    features = frame([(1, ny, 1.0)], FEAT_COLS)
    entities = frame(
        [(1, pd.Timestamp("2024-01-09 23:59"), 0), (1, pd.Timestamp("2024-01-10 00:01"), 0)],
        ENT_COLS,
    )
    call = (
        "Called point_in_time_join with a feature row at 2024-01-09 19:00 America/New_York "
        "(00:00 UTC on the 10th, spend 1.0) and naive entity rows at 2024-01-09 23:59 and "
        "2024-01-10 00:01"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [None, 1.0],
        call,
        "naive timestamps mean UTC: 23:59 naive is before the feature's instant, 00:01 after.",
    )

    features = frame([(1, pd.Timestamp("2024-01-10 00:00"), 1.0)], FEAT_COLS)
    entities = frame(
        [
            (1, pd.Timestamp("2024-01-10 00:59", tz="Europe/Paris"), 0),
            (1, pd.Timestamp("2024-01-10 01:01", tz="Europe/Paris"), 0),
        ],
        ENT_COLS,
    )
    call = (
        "Called point_in_time_join with a naive feature row at 2024-01-10 00:00 (UTC, spend "
        "1.0) and entity rows at 2024-01-10 00:59 and 01:01 Europe/Paris"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [None, 1.0],
        call,
        "Paris 00:59 is 23:59 UTC the day before; naive feature timestamps are UTC.",
    )


SPEED_ROWS = 30_000
SPEED_SLACK_S = 0.6


@pytest.mark.points(1)
@pytest.mark.task(taskno=7)
def test_a_large_join_runs_vectorised_not_row_by_row(student, reference, grading):
    feature_df = pd.read_parquet(grading.kit.data_dir / "user_features.parquet")
    rng = np.random.default_rng(300)
    # The limit below is 20 x the reference's time + SPEED_SLACK_S: with about 1 us a row for
    # the reference, a join of more than about 40 us a row fails (a filter or iterrows per row
    # costs hundreds), whatever n; n only has to make the slack small beside a loop's time.
    n = SPEED_ROWS
    # Half a second past whole seconds: never exactly at a feature row or a TTL bound.
    offsets = pd.to_timedelta(rng.integers(0, 110 * 86400, n), unit="s") + pd.Timedelta("500ms")
    entity_df = pd.DataFrame(
        {
            "user_id": rng.integers(1, 521, n),
            "event_timestamp": pd.Timestamp("2023-12-25") + offsets,
            "label": rng.integers(0, 2, n),
        }
    )
    small = entity_df.iloc[:100]
    call = (
        f"Called point_in_time_join on {n:,} entity rows over the lesson's "
        f"{len(feature_df):,} feature rows with ttl=7 days"
    )
    # Warm both up (lazy imports, first-call costs) on a small frame before timing.
    join(student, call, small, feature_df, ttl=timedelta(days=7))
    reference.point_in_time_join(small, feature_df, ttl=timedelta(days=7), _timeout=120)
    want = reference.point_in_time_join(entity_df, feature_df, ttl=timedelta(days=7), _timeout=120)
    # The reference's own CPU time: busy processes the submission left running can slow its
    # wall time, not this. (The submission's wall time includes everything it does.)
    ref_seconds = reference.last.cpu_seconds or reference.last.seconds
    limit = 20 * ref_seconds + SPEED_SLACK_S
    try:
        got = join(student, call, entity_df, feature_df, ttl=timedelta(days=7), _timeout=limit + 10)
    except StudentTimeout:
        raise AssertionError(
            f"{call}; it did not finish within {limit + 10:.0f} s, while the reference "
            f"solution takes {ref_seconds:.2f} s: a Python loop over the rows (apply, iterrows, "
            "a filter per row) is far too slow. One merge_asof over sorted frames does it."
        ) from None
    seconds = student.last.seconds
    for column in FEATURES:
        values(got, column, call)
        diff = first_differences(got, want, entity_df, column)
        assert not diff, f"{call}; {diff.replace('Feast gave', 'expected')}."
    assert seconds <= limit, (
        f"{call}; it took {seconds:.1f} s, while the reference solution takes "
        f"{ref_seconds:.2f} s (the limit is 20 x that + {SPEED_SLACK_S} s = {limit:.1f} s): a "
        "Python loop over the rows (apply, iterrows, a filter per row) is far too slow. One "
        "merge_asof over sorted frames does it."
    )
