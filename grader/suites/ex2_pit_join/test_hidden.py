"""Hidden tests of ex2_pit_join: edge cases, Feast's duckdb offline store, and scale."""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from grader.harness.pit_checks import (
    check,
    first_differences,
    frame,
    join,
    numbers,
    show,
    shows,
    values,
    when,
)
from grader.sandbox import protocol
from grader.sandbox.proxy import StudentError

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


def expect_value_error(student, call: str, naming: str, entity_df, feature_df, **kwargs):
    """The call raises ValueError whose message names `naming`."""
    try:
        got = student.point_in_time_join(entity_df, feature_df, **kwargs)
    except StudentError as exc:
        if exc.not_implemented:
            raise
        assert exc.is_a("ValueError"), (
            f"{call}; it raised {exc.type_name}: {exc.message}, expected a ValueError naming "
            f"{naming!r}: check the arguments yourself, before any work, and raise ValueError."
        )
        assert naming.lower() in exc.message.lower(), (
            f"{call}; it raised ValueError({exc.message!r}), which does not name {naming!r}: "
            "the message should say what is wrong with which argument or column."
        )
        return
    raise AssertionError(
        f"{call}; it returned a value of type {type(got).__name__} instead of raising a "
        f"ValueError naming {naming!r}."
    )


def roundtrip(value):
    """`value` as the sandbox received it (the frames travel as Arrow)."""
    blobs: list[bytes] = []
    return protocol.decode(protocol.encode(value, blobs), blobs)


# -- 1. the as-of join: what students' own data rarely has --------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_a_missing_key_or_timestamp_never_matches_and_a_zero_is_a_value_not_missing(student):
    features = frame(
        [(1, T0, 0.0), (None, T0, 5.0), (2, pd.NaT, 7.0), (2, T0 - DAY, 2.0)], FEAT_COLS
    )
    entities = frame(
        [(1, T0 + HOUR, 0), (2, T0 + HOUR, 1), (None, T0 + HOUR, 2), (1, pd.NaT, 3)], ENT_COLS
    )
    call = (
        f"Called point_in_time_join with feature rows (user 1, {when(T0)}, spend 0.0), (no "
        f"user, {when(T0)}, 5.0), (user 2, no timestamp, 7.0), (user 2, {when(T0 - DAY)}, 2.0) "
        f"and entity rows user 1 and user 2 at {when(T0 + HOUR)}, no user at {when(T0 + HOUR)}, "
        "user 1 with no timestamp"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [0.0, 2.0, None, None],
        call,
        "0.0 is a value, not a missing one; a feature row without a key or a timestamp is "
        "never picked, and an entity row without one gets missing features (drop such rows "
        "before merge_asof, which refuses nulls, and put them back as missing).",
    )


# -- 2. the TTL window --------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_a_row_exactly_ttl_old_is_kept_and_one_microsecond_older_is_not(student):
    features = frame([(1, T0, 5.0)], FEAT_COLS)
    entities = frame([(1, T0 + 7 * DAY, 0), (1, T0 + 7 * DAY + US, 1)], ENT_COLS)
    call = (
        f"Called point_in_time_join with ttl=7 days, a feature row of user 1 at {when(T0)} "
        f"(spend 5.0) and entity rows at {when(T0 + 7 * DAY)} (exactly 7 days later) and "
        f"{when(T0 + 7 * DAY + US)}"
    )
    got = join(student, call, entities, features, ttl=timedelta(days=7))
    check(
        got,
        "spend",
        [5.0, None],
        call,
        "the window is entity_ts - ttl <= feature_ts, inclusive: a row exactly ttl old is "
        "kept, one a microsecond older is not.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_a_ttl_that_is_not_whole_days_is_honoured_to_the_second(student):
    ttl = timedelta(hours=1, minutes=30)
    features = frame([(1, T0, 5.0), (2, T0, 6.0)], FEAT_COLS)
    entities = frame(
        [(1, T0 + 90 * MINUTE, 0), (2, T0 + 90 * MINUTE + pd.Timedelta(seconds=1), 1)], ENT_COLS
    )
    call = (
        f"Called point_in_time_join with ttl=1 hour 30 minutes, feature rows of users 1 and 2 "
        f"at {when(T0)}, and entity rows of user 1 at {when(T0 + 90 * MINUTE)} (exactly one "
        f"ttl later) and user 2 one second after that"
    )
    got = join(student, call, entities, features, ttl=ttl)
    check(
        got,
        "spend",
        [5.0, None],
        call,
        "the ttl is a duration, not a number of days (ttl.days of 90 minutes is 0): compare "
        "timestamps with the timedelta itself, entity_ts - ttl <= feature_ts.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_no_ttl_and_a_zero_ttl_put_no_limit_on_age(student):
    features = frame([(1, T0 - 400 * DAY, 7.0)], FEAT_COLS)
    entities = frame([(1, T0, 0)], ENT_COLS)
    for label, ttl in (("ttl=None", None), ("ttl=0 (a zero timedelta)", timedelta(0))):
        call = (
            f"Called point_in_time_join with {label}, an entity row of user 1 at {when(T0)} "
            f"and one feature row 400 days earlier (spend 7.0)"
        )
        got = join(student, call, entities, features, ttl=ttl)
        check(
            got,
            "spend",
            [7.0],
            call,
            "ttl None or zero means no age limit (Feast's 'no TTL'), not 'only rows stamped at "
            "the same instant': pass a tolerance to merge_asof only when ttl is positive.",
        )


# -- 3. ties ------------------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=3)
def test_remaining_ties_go_to_the_row_that_comes_last_in_feature_df(student):
    features = frame(
        [
            (1, T0, 1.0),
            (2, T0, 7.0),
            (1, T0, 2.0),
            (1, T0 - DAY, 0.5),
            (1, T0, 3.0),
        ],
        FEAT_COLS,
    )
    entities = frame([(1, T0 + DAY, 0)], ENT_COLS)
    call = (
        f"Called point_in_time_join without created_timestamp_col, with feature rows of user 1 "
        f"stamped {when(T0)} with spend 1.0, 2.0 and 3.0 in that order (among other rows) and "
        "an entity row a day later"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [3.0],
        call,
        "when event timestamps tie and nothing else decides, the row that comes last in "
        "feature_df wins (use a stable sort, kind='stable', and keep the original order).",
    )
    cols = ["user_id", "event_timestamp", "created", "spend"]
    features = frame(
        [(1, T0, T0, 4.0), (1, T0, T0, 5.0), (1, T0 - DAY, T0, 0.5)],
        cols,
    )
    call = (
        "Called point_in_time_join with created_timestamp_col='created' and two rows of user "
        f"1 with the same event and created timestamps ({when(T0)}), spend 4.0 then 5.0, and "
        "an entity row a day later"
    )
    got = join(student, call, entities, features, created_timestamp_col="created")
    check(
        got,
        "spend",
        [5.0],
        call,
        "when the created timestamps tie too, the row that comes last in feature_df wins.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=3)
def test_the_latest_event_timestamp_wins_over_a_later_created_timestamp(student):
    cols = ["user_id", "event_timestamp", "created", "spend"]
    features = frame([(1, T0 + DAY, T0 + DAY, 2.0), (1, T0, T0 + 5 * DAY, 1.0)], cols)
    entities = frame([(1, T0 + 2 * DAY, 0)], ENT_COLS)
    call = (
        "Called point_in_time_join with created_timestamp_col='created', a feature row at "
        f"{when(T0 + DAY)} created then (spend 2.0), an older row at {when(T0)} created "
        f"{when(T0 + 5 * DAY)} (1.0), and an entity row at {when(T0 + 2 * DAY)}"
    )
    got = join(student, call, entities, features, created_timestamp_col="created")
    check(
        got,
        "spend",
        [2.0],
        call,
        "the created timestamp only breaks ties between rows with the same event timestamp; "
        "the newest event timestamp always wins first.",
    )


# -- 4. rows and columns as given ---------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_duplicate_entity_rows_and_a_duplicate_index_each_keep_their_row(student):
    features = frame([(1, T0, 1.0), (2, T0 + 12 * HOUR, 2.0), (1, T0 + 2 * DAY, 3.0)], FEAT_COLS)
    entities = frame(
        [(1, T0 + DAY, 0), (1, T0 + DAY, 1), (2, T0 + DAY, 0), (1, T0 + DAY, 0)], ENT_COLS
    )
    entities.index = pd.Index([5, 5, 3, 5])
    call = (
        "Called point_in_time_join with four entity rows indexed [5, 5, 3, 5]: user 1, user 1, "
        f"user 2, user 1, all at {when(T0 + DAY)} (labels 0, 1, 0, 0), and feature rows of "
        f"user 1 at {when(T0)} (spend 1.0) and {when(T0 + 2 * DAY)} (3.0), user 2 at "
        f"{when(T0 + 12 * HOUR)} (2.0)"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [1.0, 1.0, 2.0, 1.0],
        call,
        "every entity row gets its own output row, duplicates included (no drop_duplicates, "
        "no join on the index).",
    )
    check(got, "label", [0, 1, 0, 0], call, "the entity columns stay as they were, row by row.")
    assert list(got.index) == [5, 5, 3, 5], (
        f"{call}; got the index {list(got.index)}, expected [5, 5, 3, 5]: the result keeps "
        "entity_df's index even when it has duplicates (put rows back by position, not label)."
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=5)
def test_timestamps_of_different_resolutions_match(student):
    features = frame([(1, T0, 1.0), (2, T0, 2.0)], FEAT_COLS)
    features["event_timestamp"] = features["event_timestamp"].astype("datetime64[us]")
    entities = frame([(2, T0 - DAY, 0), (1, T0 + pd.Timedelta(seconds=1), 0)], ENT_COLS)
    entities["event_timestamp"] = entities["event_timestamp"].astype("datetime64[s]")
    call = (
        "Called point_in_time_join with feature timestamps of dtype datetime64[us] (as parquet "
        "files give them; users 1 and 2 at 2024-01-10 00:00, spend 1.0 and 2.0) and entity "
        "timestamps of dtype datetime64[s] (user 2 a day before, user 1 at 00:00:01)"
    )
    got = join(student, call, entities, features)
    check(
        got,
        "spend",
        [None, 1.0],
        call,
        "timestamps of any resolution compare as instants; bring both sides to one unit (e.g. "
        "pd.to_datetime(..., utc=True).dt.as_unit('ns')) before merge_asof.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_custom_key_and_timestamp_column_names_are_honoured(student):
    features = pd.DataFrame(
        {
            "account": [7, 7, 8],
            "snapshot_at": [T0, T0 + 2 * DAY, T0],
            "balance": [100.0, 120.0, 5.0],
            "risk": [1, 2, 3],
        }
    )
    entities = pd.DataFrame(
        {
            "account": [7, 8, 7],
            "label_time": [T0 + DAY, T0 + DAY, T0 + 3 * DAY],
            "target": [0, 1, 0],
        }
    )
    call = (
        "Called point_in_time_join(entity_df, feature_df, entity_key='account', "
        "timestamp_col='label_time', feature_timestamp_col='snapshot_at') with feature_df "
        "columns [account, snapshot_at, balance, risk] and entity_df columns [account, "
        "label_time, target]"
    )
    got = join(
        student,
        call,
        entities,
        features,
        entity_key="account",
        timestamp_col="label_time",
        feature_timestamp_col="snapshot_at",
    )
    want = ["account", "label_time", "target", "balance", "risk"]
    assert list(got.columns) == want, (
        f"{call}; got the columns {list(got.columns)}, expected {want}: use the column names "
        "passed in, and leave the key and feature_timestamp_col out of the features (merge_asof "
        "with left_on/right_on keeps both timestamp columns: drop or avoid the right one)."
    )
    check(got, "balance", [100.0, 5.0, 120.0], call, "each row gets its account's newest row.")


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_entity_columns_come_back_unchanged_in_values_and_dtypes(student):
    entities = pd.DataFrame(
        {
            "note": ["a", None, "c"],
            "event_timestamp": pd.to_datetime(
                ["2024-01-10 08:00", "2024-01-11 09:00", "2024-01-12 23:30"]
            ).tz_localize("Europe/Paris"),
            "user_id": np.array([1, 2, 2], dtype=np.int64),
            "label": [True, False, True],
            "weight": [0.5, np.nan, 1.5],
        },
        index=pd.Index([30, 10, 20], name="row"),
    )
    features = frame([(1, T0 - DAY, 1.0), (2, T0, 2.0), (2, T0 + 2 * DAY, 3.0)], FEAT_COLS)
    call = (
        "Called point_in_time_join with entity_df columns [note (text), event_timestamp "
        "(datetime64[ns, Europe/Paris]), user_id (int64), label (bool), weight (float with "
        "NaN)] and feature rows of users 1 and 2"
    )
    got = join(student, call, entities, features)
    assert list(got.columns)[: len(entities.columns)] == list(entities.columns), (
        f"{call}; got the columns {list(got.columns)}, expected entity_df's columns "
        f"{list(entities.columns)} first, in their order, then the feature columns."
    )
    for column in entities.columns:
        have, want = got[column], entities[column]
        assert isinstance(have, pd.Series) and str(have.dtype) == str(want.dtype), (
            f"{call}; the entity column {column!r} came back with dtype "
            f"{getattr(have, 'dtype', '?')}, expected {want.dtype}: entity columns come back "
            "unchanged (convert copies of the timestamps for the join, not the output)."
        )
        assert [show(v) for v in have.tolist()] == [show(v) for v in want.tolist()], (
            f"{call}; the entity column {column!r} came back as {shows(have.tolist())}, "
            f"expected {shows(want.tolist())}: entity columns come back unchanged."
        )
    check(
        got,
        "spend",
        [1.0, 2.0, 3.0],
        call,
        "each row gets its user's newest row at or before its (Paris) timestamp.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_neither_input_frame_is_modified(student):
    cols = ["user_id", "event_timestamp", "created", "spend"]
    features = frame([(2, T0 + DAY, T0 + DAY, 2.0), (1, T0, T0, 1.0), (2, T0 - DAY, T0, 0.5)], cols)
    features.index = pd.Index([11, 12, 13])
    entities = frame([(1, T0 + 12 * HOUR, 1), (3, T0 + DAY, 0), (2, T0 + 2 * DAY, 0)], ENT_COLS)
    entities["event_timestamp"] = entities["event_timestamp"].dt.tz_localize("Asia/Tokyo")
    entities.index = pd.Index([7, 3, 5])
    sent = roundtrip([entities, features])
    call = (
        "Called point_in_time_join with unsorted feature rows, a non-default index, Asia/Tokyo "
        "entity timestamps, ttl=3 days and created_timestamp_col='created'"
    )
    got = student.call(
        "point_in_time_join",
        entities,
        features,
        ttl=timedelta(days=3),
        created_timestamp_col="created",
        _return_args=True,
    )
    assert isinstance(got, pd.DataFrame), (
        f"{call}; got a value of type {type(got).__name__}, expected a pandas DataFrame."
    )
    after = student.last.args_after or [None, None]
    for name, before, now in zip(("entity_df", "feature_df"), sent, after, strict=True):
        assert isinstance(now, pd.DataFrame), f"{call}; {name} did not survive the call."
        try:
            pd.testing.assert_frame_equal(now, before, check_exact=True)
        except AssertionError as exc:
            detail = str(exc).strip().splitlines()[0]
            raise AssertionError(
                f"{call}; afterwards the caller's {name} had changed ({detail}), expected it "
                "untouched: sort, convert and add helper columns on copies, never in place "
                "(no inplace=True, no df[col] = ... on the argument)."
            ) from None
    check(
        got,
        "spend",
        [1.0, None, 2.0],
        call,
        "each row gets its user's newest row within the 3 days before its instant (Tokyo "
        "midnight on 2024-01-12 is 15:00 UTC on the 11th); user 3 has no rows.",
    )


# -- 6. clear errors ----------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=6)
def test_a_negative_ttl_raises_value_error(student):
    expect_value_error(
        student,
        "Called point_in_time_join with ttl=-1 second",
        "ttl",
        frame([(1, T0, 0)], ENT_COLS),
        frame([(1, T0, 1.0)], FEAT_COLS),
        ttl=timedelta(seconds=-1),
    )


@pytest.mark.points(0.5)
@pytest.mark.task(taskno=6)
def test_a_feature_column_named_like_an_entity_column_raises_value_error(student):
    features = frame([(1, T0, 1.0)], FEAT_COLS).assign(label=1)
    entities = frame([(1, T0 + DAY, 0)], ENT_COLS)
    expect_value_error(
        student,
        "Called point_in_time_join with a feature column 'label' (feature_df columns [user_id, "
        "event_timestamp, spend, label]) while entity_df also has a column 'label'",
        "label",
        entities,
        features,
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=6)
def test_missing_timestamp_created_or_named_feature_columns_raise_value_error(student):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    entities = frame([(1, T0 + DAY, 0)], ENT_COLS)
    cases = [
        (
            "Called point_in_time_join on an entity_df without its timestamp column "
            "(columns [user_id, label], default timestamp_col='event_timestamp')",
            "event_timestamp",
            entities.drop(columns="event_timestamp"),
            features,
            {},
        ),
        (
            "Called point_in_time_join with feature_timestamp_col='snapshot_at' on a "
            "feature_df that has no such column",
            "snapshot_at",
            entities,
            features,
            {"feature_timestamp_col": "snapshot_at"},
        ),
        (
            "Called point_in_time_join with created_timestamp_col='created_at' on a feature_df "
            "that has no such column",
            "created_at",
            entities,
            features,
            {"created_timestamp_col": "created_at"},
        ),
        (
            "Called point_in_time_join with feature_names=['spend', 'discount'] on a feature_df "
            "without a 'discount' column",
            "discount",
            entities,
            features,
            {"feature_names": ["spend", "discount"]},
        ),
    ]
    for call, naming, entity_df, feature_df, kwargs in cases:
        expect_value_error(student, call, naming, entity_df, feature_df, **kwargs)


@pytest.mark.points(0.5)
@pytest.mark.task(taskno=6)
def test_feature_names_twice_and_a_timestamp_column_of_text_raise_value_error(student):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    entities = frame([(1, T0 + DAY, 0)], ENT_COLS)
    expect_value_error(
        student,
        "Called point_in_time_join with feature_names=['spend', 'spend']",
        "spend",
        entities,
        features,
        feature_names=["spend", "spend"],
    )
    texts = entities.assign(event_timestamp=["yesterday"])
    expect_value_error(
        student,
        "Called point_in_time_join on an entity_df whose event_timestamp column holds the text "
        "'yesterday'",
        "event_timestamp",
        texts,
        features,
    )
    call = "Called point_in_time_join with feature_names='spend' (one string, not a list)"
    try:
        got = student.point_in_time_join(entities, features, feature_names="spend")
    except StudentError as exc:
        if exc.not_implemented:
            raise
        assert exc.is_a("TypeError"), (
            f"{call}; it raised {exc.type_name}: {exc.message}, expected a TypeError: a string "
            "is a sequence of letters, so list('spend') would look for columns 's', 'p', ..."
        )
        return
    raise AssertionError(
        f"{call}; it returned a value of type {type(got).__name__} instead of raising TypeError."
    )


# -- against Feast's duckdb offline store ---------------------------------------------------------


def lesson_entities() -> pd.DataFrame:
    """20,000 random entity rows over the lesson data, plus edge cases and duplicates."""
    rng = np.random.default_rng(20240110)
    n = 20_000
    start = pd.Timestamp("2023-12-20")
    seconds = rng.integers(0, 120 * 86400, n)
    exact = rng.choice(n, 400, replace=False)
    seconds[exact] = seconds[exact] // 86400 * 86400  # at midnight: equal to a daily row
    entity_df = pd.DataFrame(
        {
            "user_id": rng.integers(1, 506, n),  # 501..505 have no rows
            "event_timestamp": start + pd.to_timedelta(seconds, unit="s"),
        }
    )
    special = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 3, 4, 4],
            "event_timestamp": pd.to_datetime(
                [
                    "2024-01-01 00:00",  # equal to the first feature row
                    "2024-02-01 00:00",  # equal to a daily row
                    "2024-04-06 00:00",  # exactly the 7-day TTL after the last row: kept
                    "2024-04-06 00:00:00.000001",  # one microsecond more: missing
                    "2023-12-31 23:59:59",  # before any data
                    "2024-02-01 00:00",
                ],
                format="ISO8601",
            ),
        }
    )
    entity_df = pd.concat([entity_df, special, entity_df.iloc[:50]], ignore_index=True)
    entity_df["row_id"] = np.arange(len(entity_df), dtype=np.int64)
    return entity_df


def feast_expected(grading, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Feast's answer for `entity_df` (by row_id), computed once and cached."""
    path = grading.cache_path("ex2-feast.parquet")
    if path.is_file():
        cached = pd.read_parquet(path)
        if len(cached) == len(entity_df):
            return cached
    from grader.course.reference_repo import open_store

    store = open_store(grading.kit)
    feast_df = store.get_historical_features(
        entity_df=entity_df, features=[f"user_activity:{name}" for name in FEATURES]
    ).to_df()
    feast_df = feast_df.sort_values("row_id", ignore_index=True)[["row_id", *FEATURES]]
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    feast_df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return feast_df


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_matches_feast_duckdb_offline_store_on_a_large_random_frame(student, grading):
    entity_df = lesson_entities()
    want = feast_expected(grading, entity_df)
    feature_df = pd.read_parquet(grading.kit.data_dir / "user_features.parquet")
    call = (
        f"Called point_in_time_join on {len(entity_df):,} random entity rows (user_id, "
        "event_timestamp, row_id; some at exactly midnight, some of unknown users, some "
        "duplicated) over the lesson's user_features.parquet with ttl=7 days, and compared "
        "with Feast's get_historical_features (duckdb offline store, view user_activity)"
    )
    got = join(student, call, entity_df, feature_df, ttl=timedelta(days=7), _timeout=120)
    for column in ["row_id", *FEATURES]:
        values(got, column, call)
    assert numbers(got["row_id"]).tolist() == entity_df["row_id"].astype("float64").tolist(), (
        f"{call}; the row_id column did not come back in entity_df's order and unchanged."
    )
    for column in FEATURES:
        diff = first_differences(got, want, entity_df, column)
        assert not diff, (
            f"{call}; {diff}. Feast takes, per row, the newest feature row of the same user "
            "with entity_ts - 7 days <= feature_ts <= entity_ts (both bounds inclusive), and "
            "gives one row per entity row, in entity_df's order."
        )


# -- 7. scale -----------------------------------------------------------------------------------
