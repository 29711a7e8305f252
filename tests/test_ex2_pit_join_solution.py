"""The reference solution of ex2_pit_join keeps the contract in its docstring.

Three kinds of evidence: a brute-force join on small random frames (hypothesis), Feast's own
duckdb offline store on the reference repo, and one test per edge case of the contract.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.course.reference_repo import open_store

SLUG = "ex2_pit_join"
DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2024-01-10")


@pytest.fixture(scope="module")
def join(solution):
    return solution(SLUG).point_in_time_join


def utc(value) -> pd.Timestamp:
    """A scalar timestamp as tz-aware UTC (naive means UTC)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def brute_force_rows(
    entity_df,
    feature_df,
    *,
    key="user_id",
    ts="event_timestamp",
    fts="event_timestamp",
    created=None,
    ttl=None,
) -> list[int | None]:
    """For each entity row, the position in feature_df of the row the contract picks, or None."""
    picks: list[int | None] = []
    for e_key, e_ts in zip(entity_df[key], entity_df[ts], strict=True):
        best, best_rank = None, None
        for pos in range(len(feature_df)):
            f_key = feature_df[key].iloc[pos]
            f_ts = feature_df[fts].iloc[pos]
            if pd.isna(f_key) or pd.isna(e_key) or f_key != e_key or pd.isna(f_ts):
                continue
            if pd.isna(e_ts) or utc(f_ts) > utc(e_ts):
                continue
            if ttl and utc(f_ts) < utc(e_ts) - ttl:
                continue
            c = feature_df[created].iloc[pos] if created else None
            rank = (
                utc(f_ts),
                utc(c) if c is not None and pd.notna(c) else pd.Timestamp.min.tz_localize("UTC"),
                pos,
            )
            if best_rank is None or rank > best_rank:
                best, best_rank = pos, rank
        picks.append(best)
    return picks


def assert_features(result, feature_df, picks, names):
    """Each feature column of `result` holds feature_df's value at the picked row, or missing."""
    for name in names:
        got = result[name].tolist()
        for i, pos in enumerate(picks):
            if pos is None:
                assert pd.isna(got[i]), f"row {i} of {name!r}: expected missing, got {got[i]!r}"
            else:
                want = feature_df[name].iloc[pos]
                assert got[i] == want, f"row {i} of {name!r}: expected {want!r}, got {got[i]!r}"


# -- (a) against a brute-force join on random frames ------------------------------------------


def stamps(minutes: list[int], tz: str | None) -> pd.Series:
    """Instants T0 + minutes (UTC), written naive (UTC) or in the timezone `tz`."""
    instants = pd.Series(T0.tz_localize("UTC") + pd.to_timedelta(minutes, unit="min"))
    return instants.dt.tz_localize(None) if tz is None else instants.dt.tz_convert(tz)


TZS = st.sampled_from([None, "UTC", "Asia/Tokyo", "America/New_York"])
TTLS = st.sampled_from(
    [None, timedelta(0), timedelta(minutes=1), pd.Timedelta(minutes=2), timedelta(minutes=3)]
)


@st.composite
def join_case(draw):
    n_f = draw(st.integers(0, 12))
    n_e = draw(st.integers(0, 10))
    ints = lambda lo, hi, n: draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))  # noqa: E731
    feature_df = pd.DataFrame(
        {
            "user_id": ints(1, 3, n_f),
            "event_timestamp": stamps(ints(0, 8, n_f), draw(TZS)),
            "created": stamps(ints(0, 3, n_f), draw(TZS)),
            "value": np.arange(n_f) * 1.5 + 0.25,
            "count": np.arange(n_f, dtype=np.int64),
        }
    )
    entity_df = pd.DataFrame(
        {
            "user_id": ints(1, 4, n_e),  # 4 never has features
            "event_timestamp": stamps(ints(0, 10, n_e), draw(TZS)),
            "label": np.arange(n_e, dtype=np.int64) % 2,
        }
    )
    if draw(st.booleans()):
        entity_df.index = pd.Index(draw(st.permutations(range(100, 100 + n_e))))
    return entity_df, feature_df, draw(TTLS), draw(st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=join_case())
def test_agrees_with_a_brute_force_join_on_random_frames(join, case):
    entity_df, feature_df, ttl, use_created = case
    created = "created" if use_created else None
    kwargs = {"ttl": ttl, "created_timestamp_col": created}
    if not use_created:
        kwargs["feature_names"] = ["value", "count", "created"]
    result = join(entity_df, feature_df, **kwargs)
    names = ["value", "count"] + ([] if use_created else ["created"])
    assert list(result.columns) == ["user_id", "event_timestamp", "label", *names]
    pd.testing.assert_frame_equal(result[entity_df.columns], entity_df)
    picks = brute_force_rows(entity_df, feature_df, created=created, ttl=ttl)
    assert_features(result, feature_df, picks, names)


# -- (b) against Feast's duckdb offline store ------------------------------------------------

FEATURES = [
    "daily_spend",
    "num_sessions",
    "avg_session_duration_min",
    "items_viewed",
    "items_purchased",
    "is_premium",
]


def test_agrees_with_feast_duckdb_get_historical_features(join, lab, data_dir):
    rng = np.random.default_rng(7)
    n = 3000
    start = pd.Timestamp("2023-12-20")
    entity_df = pd.DataFrame(
        {
            "user_id": rng.integers(1, 506, n),  # 501..505 are unknown users
            "event_timestamp": start + pd.to_timedelta(rng.integers(0, 120 * 86400, n), unit="s"),
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
    entity_df = pd.concat([entity_df, special, entity_df.iloc[:20]], ignore_index=True)
    entity_df["row_id"] = np.arange(len(entity_df))

    store = open_store(lab)
    feast_df = store.get_historical_features(
        entity_df=entity_df, features=[f"user_activity:{name}" for name in FEATURES]
    ).to_df()
    feast_df = feast_df.sort_values("row_id", ignore_index=True)

    feature_df = pd.read_parquet(data_dir / "user_features.parquet")
    ours = join(entity_df, feature_df, ttl=timedelta(days=7))

    assert len(feast_df) == len(ours) == len(entity_df)
    assert (feast_df["user_id"].to_numpy() == ours["user_id"].to_numpy()).all()
    for name in FEATURES:
        want = feast_df[name].to_numpy(dtype=float)
        got = ours[name].to_numpy(dtype=float)
        assert (np.isnan(want) == np.isnan(got)).all(), name
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=name)
    missing = ours["daily_spend"].isna()
    assert 0 < missing.sum() < len(ours) / 2
    tail = ours.iloc[n : n + len(special)]
    assert tail["daily_spend"].notna().tolist() == [True, True, True, False, False, True]


# -- (c) edge cases, one by one ----------------------------------------------------------------


def frame(rows, columns):
    return pd.DataFrame(rows, columns=columns)


FEAT_COLS = ["user_id", "event_timestamp", "spend"]
ENT_COLS = ["user_id", "event_timestamp", "label"]


def test_a_feature_row_at_the_entity_timestamp_is_included(join):
    features = frame([(1, T0 - DAY, 1.0), (1, T0, 2.0), (1, T0 + DAY, 3.0)], FEAT_COLS)
    entities = frame([(1, T0, 0)], ENT_COLS)
    assert join(entities, features)["spend"].tolist() == [2.0]


def test_a_later_feature_row_is_never_used(join):
    features = frame([(1, T0 + pd.Timedelta(microseconds=1), 9.0)], FEAT_COLS)
    entities = frame([(1, T0, 0)], ENT_COLS)
    assert join(entities, features)["spend"].isna().all()


@pytest.mark.parametrize("ttl", [timedelta(days=7), pd.Timedelta(days=7)])
def test_a_row_exactly_ttl_old_is_kept_and_one_microsecond_older_is_missing(join, ttl):
    features = frame([(1, T0, 5.0)], FEAT_COLS)
    entities = frame(
        [(1, T0 + pd.Timedelta(days=7), 0), (1, T0 + pd.Timedelta(days=7, microseconds=1), 1)],
        ENT_COLS,
    )
    out = join(entities, features, ttl=ttl)
    assert out["spend"].iloc[0] == 5.0
    assert pd.isna(out["spend"].iloc[1])


def test_ttl_picks_nothing_rather_than_an_older_row_out_of_the_window(join):
    features = frame([(1, T0 - 10 * DAY, 1.0), (1, T0 - 3 * DAY, 2.0)], FEAT_COLS)
    entities = frame([(1, T0, 0)], ENT_COLS)
    assert join(entities, features, ttl=timedelta(days=5))["spend"].tolist() == [2.0]
    assert join(entities, features, ttl=timedelta(days=2))["spend"].isna().all()


@pytest.mark.parametrize("ttl", [None, timedelta(0), pd.Timedelta(0)])
def test_no_ttl_or_zero_ttl_has_no_lower_bound(join, ttl):
    features = frame([(1, T0 - 400 * DAY, 7.0)], FEAT_COLS)
    entities = frame([(1, T0, 0)], ENT_COLS)
    assert join(entities, features, ttl=ttl)["spend"].tolist() == [7.0]


def test_ties_go_to_the_latest_created_timestamp_then_to_the_last_row(join):
    cols = ["user_id", "event_timestamp", "created", "spend"]
    features = frame(
        [
            (1, T0, T0 + pd.Timedelta(minutes=5), 1.0),  # latest created for user 1
            (1, T0, T0 + pd.Timedelta(minutes=2), 2.0),
            (2, T0, T0 + pd.Timedelta(minutes=5), 3.0),  # same created as the next row...
            (2, T0, T0 + pd.Timedelta(minutes=5), 4.0),  # ...so the last one wins
            (3, T0, pd.NaT, 5.0),  # a missing created loses
            (3, T0, T0, 6.0),
        ],
        cols,
    )
    entities = frame([(1, T0, 0), (2, T0, 0), (3, T0, 0)], ENT_COLS)
    out = join(entities, features, created_timestamp_col="created")
    assert out["spend"].tolist() == [1.0, 4.0, 6.0]
    assert list(out.columns) == ENT_COLS + ["spend"]


def test_without_a_created_column_ties_go_to_the_last_row(join):
    features = frame([(1, T0, 1.0), (1, T0, 2.0), (1, T0, 3.0)], FEAT_COLS)
    entities = frame([(1, T0 + DAY, 0)], ENT_COLS)
    assert join(entities, features)["spend"].tolist() == [3.0]


def test_the_latest_event_beats_a_later_created_timestamp(join):
    cols = ["user_id", "event_timestamp", "created", "spend"]
    features = frame([(1, T0, T0 + 5 * DAY, 1.0), (1, T0 + DAY, T0 + DAY, 2.0)], cols)
    entities = frame([(1, T0 + 2 * DAY, 0)], ENT_COLS)
    assert join(entities, features, created_timestamp_col="created")["spend"].tolist() == [2.0]


def test_order_and_a_non_default_index_are_kept_for_unsorted_input(join):
    features = frame(
        [(2, T0 + DAY, 20.0), (1, T0, 10.0), (1, T0 + 2 * DAY, 12.0), (2, T0, 19.0)], FEAT_COLS
    )
    entities = frame(
        [(1, T0 + 3 * DAY, 0), (2, T0, 1), (1, T0 + DAY, 0), (2, T0 + 5 * DAY, 1)], ENT_COLS
    )
    entities.index = pd.Index(["d", "a", "c", "b"], name="example")
    out = join(entities, features)
    assert out.index.equals(entities.index)
    assert out["label"].tolist() == [0, 1, 0, 1]
    assert out["spend"].tolist() == [12.0, 19.0, 10.0, 20.0]


def test_a_duplicate_index_is_kept(join):
    features = frame([(1, T0, 1.0), (2, T0, 2.0)], FEAT_COLS)
    entities = frame([(1, T0, 0), (2, T0, 1), (1, T0, 1)], ENT_COLS)
    entities.index = pd.Index([5, 5, 3])
    out = join(entities, features)
    assert out.index.tolist() == [5, 5, 3]
    assert out["spend"].tolist() == [1.0, 2.0, 1.0]


def test_unknown_keys_get_missing_values(join):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    entities = frame([(99, T0 + DAY, 0), (1, T0 + DAY, 1)], ENT_COLS)
    out = join(entities, features)
    assert pd.isna(out["spend"].iloc[0]) and out["spend"].iloc[1] == 1.0


def test_duplicate_entity_rows_each_get_a_row(join):
    features = frame([(1, T0, 1.0), (1, T0 + 2 * DAY, 3.0)], FEAT_COLS)
    entities = frame([(1, T0 + DAY, 0), (1, T0 + DAY, 1), (1, T0 + DAY, 0)], ENT_COLS)
    out = join(entities, features)
    assert len(out) == 3
    assert out["label"].tolist() == [0, 1, 0]
    assert out["spend"].tolist() == [1.0, 1.0, 1.0]


def test_naive_means_utc_and_aware_timestamps_compare_as_instants(join):
    paris = pd.Timestamp("2024-01-10 01:00", tz="Europe/Paris")  # 00:00 UTC
    features = frame([(1, paris, 1.0), (1, paris + pd.Timedelta(hours=2), 2.0)], FEAT_COLS)
    entities = frame(
        [
            (1, pd.Timestamp("2024-01-10 00:00"), 0),  # naive, = first row's instant
            (1, pd.Timestamp("2024-01-10 09:59", tz="Asia/Tokyo"), 0),  # 00:59 UTC
            (1, pd.Timestamp("2024-01-09 21:00", tz="America/New_York"), 0),  # 02:00 UTC
        ],
        ENT_COLS,
    )
    out = join(entities, features)
    assert out["spend"].tolist() == [1.0, 1.0, 2.0]
    assert out["event_timestamp"].tolist() == entities["event_timestamp"].tolist()


def test_naive_features_and_aware_entities_mix(join):
    features = frame([(1, pd.Timestamp("2024-01-10 00:00"), 1.0)], FEAT_COLS)
    entities = frame(
        [
            (1, pd.Timestamp("2024-01-10 00:59", tz="Europe/Paris"), 0),  # 23:59 UTC the day before
            (1, pd.Timestamp("2024-01-10 01:00", tz="Europe/Paris"), 1),
        ],
        ENT_COLS,
    )
    out = join(entities, features)
    assert pd.isna(out["spend"].iloc[0]) and out["spend"].iloc[1] == 1.0
    assert out["event_timestamp"].dtype == entities["event_timestamp"].dtype


def test_timestamps_of_different_resolutions_match(join):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    features["event_timestamp"] = features["event_timestamp"].astype("datetime64[us]")
    entities = frame([(1, T0, 0)], ENT_COLS)
    entities["event_timestamp"] = entities["event_timestamp"].astype("datetime64[s]")
    assert join(entities, features)["spend"].tolist() == [1.0]


def test_the_inputs_are_not_modified(join):
    features = frame([(2, T0 + DAY, 2.0), (1, T0, 1.0)], FEAT_COLS)
    features["created"] = features["event_timestamp"]
    entities = frame([(2, T0 + 2 * DAY, 0), (1, T0, 1)], ENT_COLS)
    entities.index = pd.Index([7, 3])
    before = copy.deepcopy((entities, features))
    out = join(entities, features, ttl=timedelta(days=3), created_timestamp_col="created")
    pd.testing.assert_frame_equal(entities, before[0])
    pd.testing.assert_frame_equal(features, before[1])
    out.loc[7, "label"] = 99
    assert entities.loc[7, "label"] == 0


def test_entity_columns_come_first_unchanged_then_features_in_frame_order(join):
    features = pd.DataFrame(
        {
            "b_feature": [1.0],
            "created": [T0],
            "user_id": [1],
            "a_feature": ["x"],
            "event_timestamp": [T0],
        }
    )
    entities = pd.DataFrame(
        {"label": [True], "event_timestamp": [T0 + DAY], "user_id": pd.array([1], "Int64")}
    )
    out = join(entities, features, created_timestamp_col="created")
    assert list(out.columns) == ["label", "event_timestamp", "user_id", "b_feature", "a_feature"]
    pd.testing.assert_frame_equal(out[list(entities.columns)], entities)
    assert out["a_feature"].tolist() == ["x"]


def test_feature_names_choose_and_order_the_columns(join):
    features = frame([(1, T0, 1.0)], FEAT_COLS).assign(other=5, more="m")
    entities = frame([(1, T0, 0)], ENT_COLS)
    out = join(entities, features, feature_names=["more", "spend"])
    assert list(out.columns) == ENT_COLS + ["more", "spend"]
    assert out[["more", "spend"]].iloc[0].tolist() == ["m", 1.0]


def test_a_differently_named_feature_timestamp_can_be_returned_as_a_feature(join):
    features = pd.DataFrame({"user_id": [1, 1], "ts": [T0, T0 + DAY], "spend": [1.0, 2.0]})
    entities = frame([(1, T0 + DAY, 0)], ENT_COLS)
    default = join(entities, features, feature_timestamp_col="ts")
    assert list(default.columns) == ENT_COLS + ["spend"]
    out = join(entities, features, feature_timestamp_col="ts", feature_names=["spend", "ts"])
    assert out["ts"].tolist() == [T0 + DAY]


def test_keys_are_matched_by_value_across_dtypes(join):
    features = frame([(1, T0, 1.0), (2, T0, 2.0)], FEAT_COLS)
    features["user_id"] = features["user_id"].astype("Int64")
    entities = frame([(1, T0, 0), (2, T0, 1)], ENT_COLS)
    assert join(entities, features)["spend"].tolist() == [1.0, 2.0]
    features["user_id"] = features["user_id"].astype("float64")
    assert join(entities, features)["spend"].tolist() == [1.0, 2.0]


def test_a_missing_key_matches_nothing(join):
    features = pd.DataFrame(
        {"user_id": [np.nan, 1.0], "event_timestamp": [T0, T0], "spend": [8, 1]}
    )
    entities = pd.DataFrame({"user_id": [np.nan, 1.0], "event_timestamp": [T0, T0]})
    out = join(entities, features)
    assert pd.isna(out["spend"].iloc[0]) and out["spend"].iloc[1] == 1


def test_missing_timestamps_match_nothing(join):
    features = frame([(1, pd.NaT, 9.0), (1, T0, 1.0)], FEAT_COLS)
    entities = frame([(1, pd.NaT, 0), (1, T0 + DAY, 1)], ENT_COLS)
    out = join(entities, features)
    assert pd.isna(out["spend"].iloc[0]) and out["spend"].iloc[1] == 1.0


def test_integer_features_keep_their_dtype_when_every_row_matches(join):
    features = frame([(1, T0, 3)], FEAT_COLS).astype({"spend": "int64"})
    features["flag"] = pd.array([1], dtype="Int64")
    entities = frame([(1, T0, 0)], ENT_COLS)
    out = join(entities, features)
    assert out["spend"].dtype == np.int64 and out["spend"].tolist() == [3]
    missing = join(frame([(1, T0, 0), (2, T0, 0)], ENT_COLS), features)
    assert missing["spend"].dtype == np.float64
    assert missing["spend"].iloc[0] == 3.0 and np.isnan(missing["spend"].iloc[1])
    assert str(missing["flag"].dtype) == "Int64" and missing["flag"].isna().tolist() == [
        False,
        True,
    ]


def test_empty_frames(join):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    entities = frame([], ENT_COLS).astype({"user_id": "int64", "event_timestamp": "datetime64[ns]"})
    out = join(entities, features)
    assert list(out.columns) == ENT_COLS + ["spend"] and len(out) == 0
    no_features = join(frame([(1, T0, 0)], ENT_COLS), features.iloc[:0])
    assert no_features["spend"].isna().all() and len(no_features) == 1


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop_from", "column", "kwargs"),
    [
        ("entity", "user_id", {}),
        ("entity", "event_timestamp", {}),
        ("feature", "user_id", {}),
        ("feature", "ts", {"feature_timestamp_col": "ts"}),
        ("feature", "created", {"created_timestamp_col": "created"}),
        ("feature", "nope", {"feature_names": ["spend", "nope"]}),
    ],
)
def test_a_missing_column_raises_value_error_naming_it(join, drop_from, column, kwargs):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    entities = frame([(1, T0, 0)], ENT_COLS)
    if drop_from == "entity":
        entities = entities.drop(columns=column)
    else:
        features = features.drop(columns=column, errors="ignore")
    with pytest.raises(ValueError, match=repr(column)):
        join(entities, features, **kwargs)


def test_a_negative_ttl_raises_value_error(join):
    with pytest.raises(ValueError, match="ttl"):
        join(frame([(1, T0, 0)], ENT_COLS), frame([], FEAT_COLS), ttl=timedelta(seconds=-1))


def test_a_ttl_that_is_not_a_timedelta_raises_type_error(join):
    with pytest.raises(TypeError, match="ttl"):
        join(frame([(1, T0, 0)], ENT_COLS), frame([], FEAT_COLS), ttl=7)


@pytest.mark.parametrize("feature_names", [None, ["spend", "label"]])
def test_a_feature_colliding_with_an_entity_column_raises_value_error(join, feature_names):
    features = frame([(1, T0, 1.0)], FEAT_COLS).assign(label=1)
    entities = frame([(1, T0, 0)], ENT_COLS)
    with pytest.raises(ValueError, match="'label'"):
        join(entities, features, feature_names=feature_names)


def test_naming_the_key_as_a_feature_collides(join):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    with pytest.raises(ValueError, match="'user_id'"):
        join(frame([(1, T0, 0)], ENT_COLS), features, feature_names=["user_id"])


def test_a_feature_named_twice_raises_value_error(join):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    with pytest.raises(ValueError, match="'spend'"):
        join(frame([(1, T0, 0)], ENT_COLS), features, feature_names=["spend", "spend"])


def test_a_single_string_as_feature_names_raises_type_error(join):
    features = frame([(1, T0, 1.0)], FEAT_COLS)
    with pytest.raises(TypeError, match="feature_names"):
        join(frame([(1, T0, 0)], ENT_COLS), features, feature_names="spend")


def test_a_timestamp_column_that_is_not_timestamps_raises_value_error(join):
    entities = frame([(1, "not a date", 0)], ENT_COLS)
    with pytest.raises(ValueError, match="'event_timestamp'"):
        join(entities, frame([(1, T0, 1.0)], FEAT_COLS))


# -- scale -------------------------------------------------------------------------------------


def test_a_million_entity_rows_over_the_lesson_data(join, data_dir):
    feature_df = pd.read_parquet(data_dir / "user_features.parquet")
    rng = np.random.default_rng(11)
    n = 1_000_000
    entity_df = pd.DataFrame(
        {
            "user_id": rng.integers(1, 521, n),
            "event_timestamp": pd.Timestamp("2023-12-25")
            + pd.to_timedelta(rng.integers(0, 110 * 86400, n), unit="s"),
            "label": rng.integers(0, 2, n),
        }
    )
    out = join(entity_df, feature_df, ttl=timedelta(days=7))
    assert len(out) == n and out.index.equals(entity_df.index)
    assert list(out.columns) == ["user_id", "event_timestamp", "label", *FEATURES]
    sample = rng.choice(n, 200, replace=False)
    by_user = {key: group for key, group in feature_df.groupby("user_id")}
    for i in sample:
        user, ts = entity_df["user_id"].iat[i], utc(entity_df["event_timestamp"].iat[i])
        rows = by_user.get(user, feature_df.iloc[:0])
        window = rows[(rows["event_timestamp"] <= ts) & (rows["event_timestamp"] >= ts - DAY * 7)]
        want = (
            window.sort_values("event_timestamp")["daily_spend"].iloc[-1] if len(window) else None
        )
        got = out["daily_spend"].iat[i]
        assert (want is None and np.isnan(got)) or got == want, (i, user, ts, got, want)
