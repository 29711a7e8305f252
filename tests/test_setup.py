"""`grade setup` gives a working reference repo: registry, online store, offline store, Redis."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.course.reference_repo import open_store

FEATURES = [
    "daily_spend",
    "num_sessions",
    "avg_session_duration_min",
    "items_viewed",
    "items_purchased",
    "is_premium",
]
REFS = [f"user_activity:{name}" for name in FEATURES]


@pytest.fixture(scope="module")
def store(lab):
    return open_store(lab)


@pytest.fixture(scope="module")
def users(data_dir) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "user_features.parquet")


def test_the_registry_lists_the_reference_view_and_service(store):
    views = {fv.name: fv for fv in store.list_feature_views()}
    assert list(views) == ["user_activity"]
    fv = views["user_activity"]
    assert [f.name for f in fv.features] == FEATURES
    assert fv.ttl == pd.Timedelta(days=7) and fv.online
    assert fv.tags.get("owner") and fv.description
    assert [s.name for s in store.list_feature_services()] == ["user_activity_v1"]
    assert [e.join_key for e in store.list_entities()] == ["user_id"]
    assert os.path.isabs(fv.batch_source.path)


def _online(store, user_ids) -> pd.DataFrame:
    rows = [{"user_id": int(u)} for u in user_ids]
    return pd.DataFrame(store.get_online_features(features=REFS, entity_rows=rows).to_dict())


def test_online_values_of_every_user_are_the_latest_row(store, users):
    latest = users[users["event_timestamp"] == users["event_timestamp"].max()]
    latest = latest.sort_values("user_id", ignore_index=True)
    online = _online(store, latest["user_id"])
    assert online["user_id"].tolist() == latest["user_id"].tolist()
    for name in FEATURES:
        np.testing.assert_allclose(
            online[name].astype(float), latest[name].astype(float), rtol=1e-6, err_msg=name
        )


def _expected_pit(entity: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Independent point-in-time join: per row, the newest feature row within [ts - 7d, ts]."""
    out = []
    by_user = dict(tuple(users.groupby("user_id")))
    for row in entity.itertuples(index=False):
        rows = by_user.get(row.user_id)
        match = None
        if rows is not None:
            ok = rows[
                (rows["event_timestamp"] <= row.event_timestamp)
                & (rows["event_timestamp"] >= row.event_timestamp - pd.Timedelta(days=7))
            ]
            if len(ok):
                match = ok.loc[ok["event_timestamp"].idxmax()]
        out.append({n: (np.nan if match is None else float(match[n])) for n in FEATURES})
    return pd.DataFrame(out)


def test_historical_retrieval_keeps_every_row_and_is_point_in_time_correct(store, users):
    rng = np.random.default_rng(3)
    n = 300
    start = pd.Timestamp("2023-12-20", tz="UTC")
    offsets = pd.to_timedelta(rng.integers(0, 120 * 86_400, n), unit="s")
    entity = pd.DataFrame({"user_id": rng.integers(1, 520, n), "event_timestamp": start + offsets})
    special = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3, 9999, 4, 4],
            "event_timestamp": pd.to_datetime(
                [
                    "2024-02-01",  # exactly on a feature row
                    "2024-02-01",  # a duplicate of the row above
                    "2023-06-01",  # before any data
                    "2024-06-01",  # long after the last row: beyond the TTL
                    "2024-02-01",  # unknown user
                    "2024-04-06 00:00:00",  # exactly seven days after the last row: kept
                    "2024-04-06 00:00:01",  # one second more: dropped
                ],
                utc=True,
                format="ISO8601",
            ),
        }
    )
    entity = pd.concat([entity, special], ignore_index=True)
    entity["row_id"] = np.arange(len(entity))
    got = store.get_historical_features(entity_df=entity, features=REFS).to_df()
    assert len(got) == len(entity)
    got = got.sort_values("row_id", ignore_index=True)
    expected = _expected_pit(entity, users)
    assert expected.iloc[-2].notna().all() and expected.iloc[-1].isna().all()
    for name in FEATURES:
        np.testing.assert_allclose(
            got[name].astype(float), expected[name], rtol=1e-6, equal_nan=True, err_msg=name
        )


def test_setup_twice_is_safe_and_keeps_the_data(lab):
    before = (lab.data_dir / "user_features.parquet").stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["--kit", str(lab.root), "setup"])
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "materialize" in result.output
    assert (lab.data_dir / "user_features.parquet").stat().st_mtime_ns == before


@pytest.mark.redis
def test_redis_variant_serves_the_same_values_as_sqlite(lab, store, redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_CONNECTION_STRING", redis_server)
    result = CliRunner().invoke(cli, ["--kit", str(lab.root), "setup", "--online", "redis"])
    assert result.exit_code == 0, result.output
    redis_store = open_store(lab, "redis")
    ids = list(range(1, 501)) + [777_777]
    from_redis, from_sqlite = _online(redis_store, ids), _online(store, ids)
    assert from_redis.iloc[-1][FEATURES].isna().all()  # the unknown user
    assert from_redis.iloc[:-1][FEATURES].notna().all().all()
    pd.testing.assert_frame_equal(from_redis, from_sqlite)


def _grade(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_unreachable_redis_is_a_one_line_error(lab):
    port = _closed_port()
    proc = _grade(
        ["--kit", str(lab.root), "setup", "--online", "redis"],
        {"REDIS_CONNECTION_STRING": f"127.0.0.1:{port}"},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "REDIS_CONNECTION_STRING" in lines[0], proc.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unwritable_data_folder_is_a_one_line_error(tmp_path):
    from kit_helpers import copy_kit

    kit = copy_kit(tmp_path / "kit")
    # A file where the data folder should be: unwritable even for root.
    (kit.root / "data").write_text("not a folder")
    proc = _grade(["--kit", str(kit.root), "setup"])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data folder" in lines[0], proc.stderr
    assert (kit.root / "data").read_text() == "not a folder"
