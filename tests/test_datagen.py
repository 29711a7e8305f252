"""The generated data has the SPEC's shapes and types, is deterministic and does not leak."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from grader.course import datagen
from grader.sandbox.bubblewrap import readable_by_others

INT, FLOAT = "int64", "float64"
SCHEMAS = {
    "user_features.parquet": {
        "user_id": INT,
        "daily_spend": FLOAT,
        "num_sessions": INT,
        "items_viewed": INT,
        "items_purchased": INT,
        "is_premium": INT,
        "avg_session_duration_min": FLOAT,
    },
    "fraud/transactions.parquet": {
        "transaction_id": INT,
        "user_id": INT,
        "merchant_id": INT,
        "amount": FLOAT,
        "is_fraud": INT,
    },
    "fraud/user_txn_stats.parquet": {
        "user_id": INT,
        "txn_count_1h": INT,
        "txn_count_24h": INT,
        "distinct_merchants_24h": INT,
        "txn_amount_sum_1h": FLOAT,
        "avg_amount_7d": FLOAT,
    },
    "fraud/merchant_stats.parquet": {
        "merchant_id": INT,
        "chargeback_rate_30d": FLOAT,
        "avg_ticket_30d": FLOAT,
        "txn_count_7d": INT,
        "is_high_risk": INT,
    },
}


@pytest.fixture(scope="module")
def frames(data_dir) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(data_dir / name) for name in SCHEMAS}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_each_file_has_the_spec_columns_and_types(frames, name):
    frame = frames[name]
    for column, dtype in SCHEMAS[name].items():
        assert str(frame[column].dtype) == dtype, (name, column)
    stamps = [c for c in frame.columns if c in ("event_timestamp", "created")]
    assert "event_timestamp" in stamps
    for column in stamps:
        assert str(frame[column].dt.tz) == "UTC", (name, column)
    assert set(frame.columns) == set(SCHEMAS[name]) | set(stamps)


def test_user_features_are_the_lessons_grid(frames):
    users = frames["user_features.parquet"]
    assert len(users) == 500 * 90
    assert sorted(users["user_id"].unique()) == list(range(1, 501))
    days = users["event_timestamp"].drop_duplicates().sort_values()
    assert days.iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert days.diff().dropna().eq(pd.Timedelta(days=1)).all() and len(days) == 90
    assert not users.duplicated(["user_id", "event_timestamp"]).any()
    # The lesson's distributions: Poisson(3), Poisson(10), Poisson(1), 30% premium, gamma(2, 5).
    assert users["num_sessions"].mean() == pytest.approx(3, rel=0.05)
    assert users["items_viewed"].mean() == pytest.approx(10, rel=0.05)
    assert users["items_purchased"].mean() == pytest.approx(1, rel=0.05)
    assert users["is_premium"].mean() == pytest.approx(0.3, abs=0.02)
    assert users["avg_session_duration_min"].mean() == pytest.approx(10, rel=0.05)
    assert users["daily_spend"].mean() == pytest.approx(30, rel=0.15)


def test_fraud_ids_and_span(frames):
    txns = frames["fraud/transactions.parquet"]
    assert txns["transaction_id"].is_unique
    assert txns["user_id"].between(1, 1000).all() and txns["merchant_id"].between(1, 200).all()
    assert set(txns["is_fraud"].unique()) == {0, 1}
    span = txns["event_timestamp"].max() - txns["event_timestamp"].min()
    assert pd.Timedelta(days=88) < span <= pd.Timedelta(days=90)
    stats = frames["fraud/user_txn_stats.parquet"]
    hours = stats["event_timestamp"].drop_duplicates().sort_values()
    assert hours.diff().dropna().eq(pd.Timedelta(hours=1)).all()
    assert stats["user_id"].nunique() == 1000
    merchants = frames["fraud/merchant_stats.parquet"]
    assert merchants["merchant_id"].nunique() == 200
    assert (merchants["event_timestamp"].dt.hour == 0).all()
    assert (stats["created"] > stats["event_timestamp"]).all()


def test_one_seed_gives_identical_frames_and_another_seed_differs():
    first, again, other = datagen.generate(7), datagen.generate(7), datagen.generate(8)
    for name, frame in first.frames.items():
        pd.testing.assert_frame_equal(frame, again.frames[name])
        assert not frame.equals(other.frames[name]), name


def _recompute_user(txns: pd.DataFrame, user_id: int, at: pd.Timestamp) -> dict[str, float]:
    mine = txns[txns["user_id"] == user_id]
    before = mine[mine["event_timestamp"] < at]

    def window(hours: int) -> pd.DataFrame:
        return before[before["event_timestamp"] >= at - pd.Timedelta(hours=hours)]

    week = window(24 * 7)
    return {
        "txn_count_1h": len(window(1)),
        "txn_count_24h": len(window(24)),
        "distinct_merchants_24h": window(24)["merchant_id"].nunique(),
        "txn_amount_sum_1h": round(window(1)["amount"].sum(), 2),
        "avg_amount_7d": round(week["amount"].mean(), 2) if len(week) else np.nan,
    }


def test_user_snapshots_only_count_transactions_strictly_before_them(frames):
    txns = frames["fraud/transactions.parquet"]
    stats = frames["fraud/user_txn_stats.parquet"]
    # The current version of each snapshot is the one created last.
    current = stats.sort_values("created").drop_duplicates(
        ["user_id", "event_timestamp"], keep="last"
    )
    rng = np.random.default_rng(0)
    # Sample snapshots right after fraud bursts too, where windows are busiest.
    busy = txns.loc[txns["is_fraud"] == 1, ["user_id", "event_timestamp"]].sample(
        40, random_state=1
    )
    busy["event_timestamp"] = busy["event_timestamp"].dt.ceil("h")
    sample = pd.concat(
        [current.sample(160, random_state=int(rng.integers(1 << 30)))[busy.columns], busy]
    )
    indexed = current.set_index(["user_id", "event_timestamp"])
    for user_id, at in sample.itertuples(index=False):
        row = indexed.loc[(user_id, at)]
        for column, value in _recompute_user(txns, user_id, at).items():
            if isinstance(value, float) and np.isnan(value):
                assert np.isnan(row[column]), (user_id, at, column)
            else:
                assert row[column] == pytest.approx(value, abs=0.011), (user_id, at, column)


def test_merchant_snapshots_only_count_transactions_strictly_before_them(frames):
    txns = frames["fraud/transactions.parquet"]
    stats = frames["fraud/merchant_stats.parquet"].set_index(["merchant_id", "event_timestamp"])
    for merchant_id, at in stats.sample(60, random_state=2).index:
        mine = txns[(txns["merchant_id"] == merchant_id) & (txns["event_timestamp"] < at)]
        month = mine[mine["event_timestamp"] >= at - pd.Timedelta(days=30)]
        week = mine[mine["event_timestamp"] >= at - pd.Timedelta(days=7)]
        row = stats.loc[(merchant_id, at)]
        assert row["txn_count_7d"] == len(week)
        rate = month["is_fraud"].mean() if len(month) else 0.0
        assert row["chargeback_rate_30d"] == pytest.approx(rate, abs=1e-4)
        if len(month):
            assert row["avg_ticket_30d"] == pytest.approx(month["amount"].mean(), abs=0.011)
        else:
            assert np.isnan(row["avg_ticket_30d"])


def test_restated_snapshots_share_the_timestamp_and_are_created_later(frames):
    stats = frames["fraud/user_txn_stats.parquet"]
    dup = stats[stats.duplicated(["user_id", "event_timestamp"], keep=False)]
    assert len(dup) > 100
    first = dup.sort_values("created").groupby(["user_id", "event_timestamp"]).first()
    last = dup.sort_values("created").groupby(["user_id", "event_timestamp"]).last()
    assert (last["created"] > first["created"]).all()
    assert (last["txn_count_1h"] == first["txn_count_1h"] + 1).all()


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """Rank-based area under the ROC curve."""
    ranks = pd.Series(score).rank().to_numpy()
    pos = label == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_the_features_carry_a_fraud_signal(frames):
    txns = frames["fraud/transactions.parquet"].sort_values("event_timestamp")
    merchants = frames["fraud/merchant_stats.parquet"].sort_values("event_timestamp")
    joined = pd.merge_asof(
        txns, merchants, on="event_timestamp", by="merchant_id", direction="backward"
    )
    label = joined["is_fraud"].to_numpy()
    assert 0.005 < label.mean() < 0.1
    # Point-in-time features alone (no amount) separate fraud better than chance.
    assert _auc(joined["chargeback_rate_30d"].fillna(0).to_numpy(), label) > 0.6
    assert _auc(joined["amount"].to_numpy(), label) > 0.8


def test_generated_files_are_readable_by_the_sandbox_user(data_dir):
    # A sandbox runs student code as an unprivileged uid; 0600 data would make it keep ours.
    assert readable_by_others((data_dir,))
    modes = {p.name: p.stat().st_mode & 0o777 for p in data_dir.rglob("*.parquet")}
    assert modes and all(mode & 0o444 == 0o444 for mode in modes.values()), modes


def test_make_readable_repairs_an_old_installs_private_files(tmp_path):
    (tmp_path / "fraud").mkdir(mode=0o700)
    files = ["user_features.parquet", "fraud/transactions.parquet"]
    for name in files:
        (tmp_path / name).write_bytes(b"PAR1")
        (tmp_path / name).chmod(0o600)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "notes.txt").chmod(0o600)
    (tmp_path / datagen.MANIFEST_NAME).write_text(json.dumps({"files": files}))
    datagen.make_readable(tmp_path)
    assert readable_by_others((tmp_path / "fraud",))
    assert all((tmp_path / name).stat().st_mode & 0o777 == 0o644 for name in files)
    assert (tmp_path / "fraud").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "notes.txt").stat().st_mode & 0o777 == 0o600  # not ours to open up
