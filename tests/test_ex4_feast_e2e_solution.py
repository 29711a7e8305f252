"""The reference solution of ex4_feast_e2e runs the lesson's demo end to end, without its traps.

One repo is written, applied and materialized for [2024-01-01, 2024-03-01] per module, in a
temp folder over the generated `user_features.parquet`. Training frames are checked against
an independent pandas point-in-time join; online values against the training frame at `end`.
Two tests prove that the lesson's traps are real on Feast 0.67.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SLUG = "ex4_feast_e2e"
START = datetime(2024, 1, 1)
END = datetime(2024, 3, 1)
FEATURES = {
    "daily_spend": "Float32",
    "num_sessions": "Int64",
    "avg_session_duration_min": "Float32",
    "items_viewed": "Int64",
    "items_purchased": "Int64",
    "is_premium": "Int64",
}
# Deliberately not in file order, to prove the output follows the request.
REFS = [
    "user_activity:is_premium",
    "user_activity:daily_spend",
    "user_activity:items_viewed",
    "user_activity:avg_session_duration_min",
    "user_activity:num_sessions",
    "user_activity:items_purchased",
]
SHORT = [ref.split(":")[1] for ref in REFS]
FLOAT32_RTOL = 1e-6  # float32 keeps ~7 significant digits


def independent_join(entity_df: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame:
    """Latest row of the same user at or before each entity row, at most 7 days old."""
    right = data.rename(columns={"event_timestamp": "_feature_ts"})[
        ["user_id", "_feature_ts", *SHORT]
    ].sort_values("_feature_ts", kind="stable")
    left = pd.DataFrame(
        {
            "user_id": entity_df["user_id"].to_numpy(),
            "_ts": pd.to_datetime(entity_df["event_timestamp"], utc=True).to_numpy(),
            "_row": np.arange(len(entity_df)),
        }
    )
    left["_ts"] = pd.to_datetime(left["_ts"], utc=True)
    joined = pd.merge_asof(
        left.sort_values("_ts", kind="stable"),
        right,
        left_on="_ts",
        right_on="_feature_ts",
        by="user_id",
        direction="backward",
    ).sort_values("_row")
    out = joined[SHORT].astype("float64")
    out.loc[((joined["_ts"] - joined["_feature_ts"]) > timedelta(days=7)).to_numpy()] = np.nan
    return out.set_axis(entity_df.index)


def assert_features_close(got, want, what: str) -> None:
    for name in SHORT:
        np.testing.assert_allclose(
            np.asarray(got[name], dtype="float64"),
            np.asarray(want[name], dtype="float64"),
            rtol=FLOAT32_RTOL,
            equal_nan=True,
            err_msg=f"{what}: {name}",
        )


@pytest.fixture(scope="module")
def e2e(solution):
    return solution(SLUG)


@pytest.fixture(scope="module")
def data_path(data_dir) -> Path:
    return data_dir / "user_features.parquet"


@pytest.fixture(scope="module")
def user_data(data_path) -> pd.DataFrame:
    return pd.read_parquet(data_path)


@pytest.fixture(scope="module")
def repo(e2e, data_path, tmp_path_factory):
    """(repo_dir, names returned by apply_repo): written, applied and materialized."""
    repo_dir = tmp_path_factory.mktemp("ex4") / "repo"
    e2e.write_repo(repo_dir, data_path)
    names = e2e.apply_repo(repo_dir)
    e2e.materialize_online(repo_dir, START, END)
    return repo_dir, names


@pytest.fixture(scope="module")
def repo_dir(repo) -> Path:
    return repo[0]


@pytest.fixture(scope="module")
def store(repo_dir):
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo_dir))


@pytest.fixture(scope="module")
def entity_df(user_data) -> pd.DataFrame:
    """Shuffled training examples: known and unknown users, duplicates, rows before the data,
    rows after it (beyond the ttl), timestamps exactly on a data row and between rows."""
    rng = np.random.default_rng(11)
    n = 1500
    users = rng.integers(1, 521, n)  # 501..520 are unknown
    seconds = rng.integers(0, 112 * 86_400, n)
    stamps = pd.Timestamp("2023-12-25") + pd.to_timedelta(seconds, unit="s")
    on_the_day = rng.random(n) < 0.3
    stamps = stamps.where(~on_the_day, stamps.floor("D"))
    frame = pd.DataFrame(
        {"user_id": users.astype(np.int64), "event_timestamp": stamps, "label": rng.random(n)}
    )
    frame = pd.concat([frame, frame.sample(100, random_state=1)], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=5)
    frame.index = pd.Index([f"ex{i}" for i in rng.permutation(len(frame))], name="example")
    return frame


@pytest.fixture(scope="module")
def training(e2e, repo_dir, entity_df):
    before = entity_df.copy(deep=True)
    frame = e2e.training_frame(repo_dir, entity_df, REFS)
    pd.testing.assert_frame_equal(entity_df, before)  # the input was not modified
    return frame


# write_repo --------------------------------------------------------------------------------


def test_write_repo_writes_a_duckdb_sqlite_repo_with_registry_and_online_store_inside(
    repo_dir, store
):
    import yaml

    config = yaml.safe_load((repo_dir / "feature_store.yaml").read_text(encoding="utf-8"))
    assert config["offline_store"]["type"] == "duckdb"
    assert config["online_store"]["type"] == "sqlite"
    assert config["entity_key_serialization_version"] == 3
    for path in (config["registry"], config["online_store"]["path"]):
        full = (repo_dir / path).resolve()
        assert full.is_relative_to(repo_dir.resolve()), path
        assert full.is_file(), f"{full} should exist after apply and materialize"
    assert store.config.offline_store.type == "duckdb"


def test_write_repo_registers_the_data_path_as_an_absolute_path(
    e2e, data_dir, tmp_path, monkeypatch
):
    from feast import FileSource

    from kit_helpers import import_file

    monkeypatch.chdir(data_dir.parent)
    e2e.write_repo(tmp_path / "repo", Path(data_dir.name) / "user_features.parquet")
    definitions = [p for p in (tmp_path / "repo").glob("*.py")]
    assert len(definitions) == 1
    module = import_file(definitions[0])
    sources = [v for v in vars(module).values() if isinstance(v, FileSource)]
    assert [s.path for s in sources] == [str((data_dir / "user_features.parquet").resolve())]


# apply_repo --------------------------------------------------------------------------------


def test_apply_repo_returns_the_sorted_view_names(repo):
    assert repo[1] == ["user_activity"]


def test_the_registry_holds_the_lessons_entity_view_and_service(store):
    from feast import ValueType

    assert [(e.join_key, e.value_type) for e in store.list_entities()] == [
        ("user_id", ValueType.INT64)
    ]
    view = store.get_feature_view("user_activity")
    assert view.ttl == timedelta(days=7)
    assert view.online is True
    assert [c.name for c in view.entity_columns] == ["user_id"]
    assert {f.name: str(f.dtype) for f in view.features} == FEATURES
    service = store.get_feature_service("user_activity_v1")
    served = {(p.name, f.name) for p in service.feature_view_projections for f in p.features}
    assert served == {("user_activity", name) for name in FEATURES}


def test_apply_repo_twice_changes_nothing(e2e, repo_dir, store):
    assert e2e.apply_repo(repo_dir) == ["user_activity"]
    assert [v.name for v in store.list_feature_views()] == ["user_activity"]


def test_trap_1_the_lessons_apply_with_an_empty_list_registers_nothing(e2e, data_path, tmp_path):
    from feast import FeatureStore

    e2e.write_repo(tmp_path / "repo", data_path)
    FeatureStore(repo_path=str(tmp_path / "repo")).apply([])
    fresh = FeatureStore(repo_path=str(tmp_path / "repo"))
    assert fresh.list_feature_views() == []
    assert fresh.list_entities() == []
    assert fresh.list_feature_services() == []
    assert e2e.apply_repo(tmp_path / "repo") == ["user_activity"]


# materialize_online ------------------------------------------------------------------------


def test_trap_2_the_lessons_first_materialize_incremental_loads_nothing(e2e, data_path, tmp_path):
    from feast import FeatureStore

    repo_dir = tmp_path / "repo"
    e2e.write_repo(repo_dir, data_path)
    e2e.apply_repo(repo_dir)
    FeatureStore(repo_path=str(repo_dir)).materialize_incremental(end_date=END)
    empty = e2e.online_features(repo_dir, [1, 2, 3], REFS)
    assert all(value is None for name in SHORT for value in empty[name])

    e2e.materialize_online(repo_dir, START, END)
    loaded = e2e.online_features(repo_dir, [1, 2, 3], REFS)
    assert all(value is not None for name in SHORT for value in loaded[name])


def test_materialize_online_rejects_a_start_after_the_end(e2e, repo_dir):
    with pytest.raises(ValueError, match="after"):
        e2e.materialize_online(repo_dir, END, START)


def test_materialize_online_records_the_window_in_the_registry(store):
    view = store.get_feature_view("user_activity")
    assert view.most_recent_end_time == pd.Timestamp(END, tz="UTC").to_pydatetime()


# training_frame ----------------------------------------------------------------------------


def test_training_frame_keeps_entity_df_rows_index_and_columns_then_short_names(
    training, entity_df
):
    assert list(training.columns) == [*entity_df.columns, *SHORT]
    assert training.index.equals(entity_df.index)
    pd.testing.assert_frame_equal(training[list(entity_df.columns)], entity_df)


def test_training_frame_is_point_in_time_correct_for_every_row(training, entity_df, user_data):
    want = independent_join(entity_df, user_data)
    assert_features_close(training, want, "training_frame")
    # The probe rows really cover matches, unknown users and rows before/after the data.
    assert want["daily_spend"].notna().sum() > 800
    unknown = entity_df["user_id"] > 500
    early = entity_df["event_timestamp"] < pd.Timestamp("2024-01-01")
    late = entity_df["event_timestamp"] > pd.Timestamp("2024-04-06 00:00:01")
    for probe in (unknown, early, late):
        assert probe.sum() > 10
        assert training.loc[probe, SHORT].isna().all().all()


def test_training_frame_reads_naive_timestamps_as_utc(e2e, repo_dir, entity_df, training):
    aware = entity_df.head(300).copy()
    aware["event_timestamp"] = (
        aware["event_timestamp"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    )
    frame = e2e.training_frame(repo_dir, aware, REFS)
    assert_features_close(frame, training.head(300), "tz-aware entity_df")


def test_training_frame_rejects_a_reference_without_a_view(e2e, repo_dir, entity_df):
    with pytest.raises(ValueError, match="daily_spend"):
        e2e.training_frame(repo_dir, entity_df.head(3), ["daily_spend"])


# online_features ---------------------------------------------------------------------------


def test_online_features_follow_user_ids_order_with_none_for_unknown_users(
    e2e, repo_dir, user_data
):
    ids = [7, 1, 9999, 7, 500, 0]
    got = e2e.online_features(repo_dir, ids, REFS)
    assert list(got) == ["user_id", *SHORT]
    assert got["user_id"] == ids
    at_end = user_data[user_data["event_timestamp"] == pd.Timestamp(END, tz="UTC")]
    rows = at_end.set_index("user_id")
    for i, user in enumerate(ids):
        for name in SHORT:
            value = got[name][i]
            if user in rows.index:
                assert value == pytest.approx(float(rows.at[user, name]), rel=FLOAT32_RTOL)
            else:
                assert value is None, f"user {user} is unknown: {name} should be None"


def test_online_features_for_no_users_are_empty_lists(e2e, repo_dir):
    assert e2e.online_features(repo_dir, [], REFS[:2]) == {
        "user_id": [],
        SHORT[0]: [],
        SHORT[1]: [],
    }


def test_online_values_at_end_equal_the_training_frame_at_end_for_every_user(e2e, repo_dir):
    users = list(range(1, 501))
    at_end = pd.DataFrame({"user_id": users, "event_timestamp": [END] * len(users)})
    offline = e2e.training_frame(repo_dir, at_end, REFS)
    online = e2e.online_features(repo_dir, users, REFS)
    assert online["user_id"] == users
    assert offline[SHORT].notna().all().all()
    assert all(v is not None for name in SHORT for v in online[name])
    assert_features_close(online, offline, "online vs training at end")


def test_the_solution_leaves_the_entity_frame_untouched_even_with_odd_indexes(e2e, repo_dir):
    entity = pd.DataFrame(
        {"user_id": [3, 3, 1], "event_timestamp": [END, END, END], "label": [1, 1, 0]},
        index=[5, 5, 2],
    )
    snapshot = copy.deepcopy(entity)
    frame = e2e.training_frame(repo_dir, entity, REFS[:1])
    pd.testing.assert_frame_equal(entity, snapshot)
    assert list(frame.index) == [5, 5, 2]
    assert frame["is_premium"].iloc[0] == frame["is_premium"].iloc[1]
