"""Deterministic, vectorised generation of the kit's data sets under `data/`.

* `user_features.parquet`: the lesson's user activity table (500 users x 90 days).
* `fraud/transactions.parquet`: card transactions with a fraud signal (fraud is larger, comes
  in bursts, and clusters on a few risky merchants).
* `fraud/user_txn_stats.parquet`: hourly per-user snapshots computed from the transactions
  strictly before each snapshot's `event_timestamp`. A few snapshots are restated later (a
  second row with the same `event_timestamp` and a later `created`) after late-arriving
  transactions, so `created` decides ties just as it does in a real pipeline.
* `fraud/merchant_stats.parquet`: daily per-merchant snapshots, same no-leak rule.

Same seed, same frames: every random draw comes from one `numpy.random.Generator`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")
N_DAYS = 90
N_USERS = 500
N_CARD_USERS = 1000
N_MERCHANTS = 200
N_RISKY_MERCHANTS = 12
HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
MANIFEST_NAME = "generated.json"
# Bump when the generator's output changes, so `grade setup` regenerates stale data.
DATA_VERSION = 1

USER_FEATURE_COLUMNS = [
    "event_timestamp",
    "user_id",
    "daily_spend",
    "num_sessions",
    "avg_session_duration_min",
    "items_viewed",
    "items_purchased",
    "is_premium",
]


@dataclass(frozen=True)
class Dataset:
    """All generated frames, keyed by their path relative to `data/`."""

    frames: dict[str, pd.DataFrame]


def user_features(rng: np.random.Generator) -> pd.DataFrame:
    """The lesson's user activity table: one row per user per day, the lesson's distributions."""
    days = np.repeat(np.arange(N_DAYS), N_USERS)
    n = days.size
    spend = rng.exponential(30, n) + np.sin(days / 7) * 10
    frame = pd.DataFrame(
        {
            "event_timestamp": START + pd.to_timedelta(days, unit="D"),
            "user_id": np.tile(np.arange(1, N_USERS + 1, dtype=np.int64), N_DAYS),
            "daily_spend": np.round(spend, 2),
            "num_sessions": rng.poisson(3, n).astype(np.int64),
            "avg_session_duration_min": np.round(rng.gamma(2, 5, n), 1),
            "items_viewed": rng.poisson(10, n).astype(np.int64),
            "items_purchased": rng.poisson(1, n).astype(np.int64),
            "is_premium": (rng.random(n) > 0.7).astype(np.int64),
        }
    )
    return frame[USER_FEATURE_COLUMNS]


def transactions(rng: np.random.Generator) -> pd.DataFrame:
    """Card transactions over 90 days: everyday spending plus bursts of fraud."""
    span_s = N_DAYS * 86_400
    risky = rng.choice(np.arange(1, N_MERCHANTS + 1), N_RISKY_MERCHANTS, replace=False)

    # Everyday spending: each user has their own rate and typical ticket size.
    rate = rng.gamma(2.0, 0.45, N_CARD_USERS)  # transactions per day
    counts = rng.poisson(rate * N_DAYS)
    users = np.repeat(np.arange(1, N_CARD_USERS + 1, dtype=np.int64), counts)
    ticket = rng.lognormal(3.4, 0.5, N_CARD_USERS)
    n_ok = users.size
    ok = pd.DataFrame(
        {
            "user_id": users,
            "merchant_id": rng.integers(1, N_MERCHANTS + 1, n_ok),
            "amount": ticket[users - 1] * rng.lognormal(0.0, 0.6, n_ok),
            "offset_s": rng.integers(0, span_s, n_ok),
            "is_fraud": np.zeros(n_ok, dtype=np.int64),
        }
    )

    # Fraud: a stolen card is used several times within a few hours, for large amounts,
    # mostly at risky merchants.
    n_bursts = 350
    burst_user = rng.integers(1, N_CARD_USERS + 1, n_bursts)
    burst_start = rng.integers(0, span_s - 4 * 3600, n_bursts)
    burst_len = rng.integers(3, 11, n_bursts)
    b = np.repeat(np.arange(n_bursts), burst_len)
    n_bad = b.size
    at_risky = rng.random(n_bad) < 0.7
    bad = pd.DataFrame(
        {
            "user_id": burst_user[b],
            "merchant_id": np.where(
                at_risky,
                rng.choice(risky, n_bad),
                rng.integers(1, N_MERCHANTS + 1, n_bad),
            ),
            "amount": rng.lognormal(5.4, 0.7, n_bad),
            "offset_s": burst_start[b] + rng.integers(0, 3 * 3600, n_bad),
            "is_fraud": np.ones(n_bad, dtype=np.int64),
        }
    )
    txns = pd.concat([ok, bad], ignore_index=True)
    txns = txns.sort_values(["offset_s", "user_id"], kind="stable", ignore_index=True)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, len(txns) + 1, dtype=np.int64),
            "user_id": txns["user_id"].astype(np.int64),
            "merchant_id": txns["merchant_id"].astype(np.int64),
            "amount": np.round(txns["amount"].to_numpy(), 2),
            "event_timestamp": START + pd.to_timedelta(txns["offset_s"], unit="s"),
            "is_fraud": txns["is_fraud"].astype(np.int64),
        }
    )


def _window_sums(buckets: np.ndarray, width: int) -> np.ndarray:
    """Sum of `buckets[:, k-width:k]` for every snapshot k in 0..n (the window ends before k)."""
    n_rows, n = buckets.shape
    cum = np.zeros((n_rows, n + 1), dtype=buckets.dtype)
    np.cumsum(buckets, axis=1, out=cum[:, 1:])
    lagged = np.zeros_like(cum)
    lagged[:, width:] = cum[:, : n + 1 - width]
    return cum - lagged


def _distinct_in_window(
    entity: np.ndarray, other: np.ndarray, bucket: np.ndarray, n_entities: int, n: int, width: int
) -> np.ndarray:
    """Distinct `other` values per entity in buckets [k-width, k) for every snapshot k in 0..n.

    A value seen in bucket h counts for snapshots h+1..h+width; consecutive sightings of the same
    pair have their coverage cut where the next one starts, so each pair counts once.
    """
    pairs = pd.DataFrame({"e": entity, "o": other, "h": bucket}).drop_duplicates()
    pairs = pairs.sort_values(["e", "o", "h"], ignore_index=True)
    h = pairs["h"].to_numpy()
    same_pair_next = (pairs[["e", "o"]].shift(-1) == pairs[["e", "o"]]).all(axis=1).to_numpy()
    next_h = np.where(same_pair_next, np.roll(h, -1), np.iinfo(np.int64).max)
    begin = h + 1
    end = np.minimum(h + width, next_h)  # inclusive
    diff = np.zeros((n_entities, n + 2), dtype=np.int64)
    e = pairs["e"].to_numpy() - 1
    np.add.at(diff, (e, np.minimum(begin, n + 1)), 1)
    np.add.at(diff, (e, np.minimum(end + 1, n + 1)), -1)
    return np.cumsum(diff, axis=1)[:, : n + 1]


def _grid_frame(
    key: str, n_entities: int, step: pd.Timedelta, n_snapshots: int, columns: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Long frame of one row per entity per snapshot from (entity, snapshot) grids."""
    ids = np.repeat(np.arange(1, n_entities + 1, dtype=np.int64), n_snapshots)
    ts = START + step * np.tile(np.arange(n_snapshots), n_entities)
    out = {key: ids, "event_timestamp": ts}
    out.update({name: grid.reshape(-1) for name, grid in columns.items()})
    return pd.DataFrame(out)


def user_txn_stats(txns: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Hourly per-user snapshots at every hour from the start to the end of the data."""
    n = N_DAYS * 24
    h = ((txns["event_timestamp"] - START) // HOUR).to_numpy()
    u = txns["user_id"].to_numpy() - 1
    amount = txns["amount"].to_numpy()
    count = np.zeros((N_CARD_USERS, n), dtype=np.int64)
    total = np.zeros((N_CARD_USERS, n), dtype=np.float64)
    np.add.at(count, (u, h), 1)
    np.add.at(total, (u, h), amount)
    count_7d = _window_sums(count, 24 * 7)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_7d = np.where(count_7d > 0, _window_sums(total, 24 * 7) / count_7d, np.nan)
    stats = _grid_frame(
        "user_id",
        N_CARD_USERS,
        HOUR,
        n + 1,
        {
            "txn_count_1h": _window_sums(count, 1),
            "txn_count_24h": _window_sums(count, 24),
            "distinct_merchants_24h": _distinct_in_window(
                u + 1, txns["merchant_id"].to_numpy(), h, N_CARD_USERS, n, 24
            ),
            "txn_amount_sum_1h": np.round(_window_sums(total, 1), 2),
            "avg_amount_7d": np.round(avg_7d, 2),
        },
    )
    stats["created"] = stats["event_timestamp"] + pd.Timedelta(minutes=5)
    return _with_restatements(stats, rng)


def _with_restatements(stats: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Add late first versions of ~1% of the active snapshots, written before the correct ones.

    The pipeline first published these snapshots before a late transaction arrived (so the
    1-hour figures were one transaction short) and restated them 3 minutes later. Both rows
    share `event_timestamp`; only `created` tells which one is current.
    """
    active = stats.index[stats["txn_count_1h"].to_numpy() > 0]
    chosen = rng.choice(active, size=max(1, len(active) // 100), replace=False)
    early = stats.loc[np.sort(chosen)].copy()
    early["txn_count_1h"] -= 1
    early["txn_count_24h"] -= 1
    early["txn_amount_sum_1h"] = np.round(early["txn_amount_sum_1h"] * 0.5, 2)
    early["created"] = early["event_timestamp"] + pd.Timedelta(minutes=2)
    out = pd.concat([stats, early], ignore_index=True)
    out = out.sort_values(["user_id", "event_timestamp", "created"], ignore_index=True)
    columns = [
        "user_id",
        "event_timestamp",
        "created",
        "txn_count_1h",
        "txn_count_24h",
        "distinct_merchants_24h",
        "txn_amount_sum_1h",
        "avg_amount_7d",
    ]
    return out[columns]


def merchant_stats(txns: pd.DataFrame) -> pd.DataFrame:
    """Daily per-merchant snapshots at every midnight from the start to the end of the data."""
    n = N_DAYS
    d = ((txns["event_timestamp"] - START) // DAY).to_numpy()
    m = txns["merchant_id"].to_numpy() - 1
    count = np.zeros((N_MERCHANTS, n), dtype=np.int64)
    fraud = np.zeros((N_MERCHANTS, n), dtype=np.int64)
    total = np.zeros((N_MERCHANTS, n), dtype=np.float64)
    np.add.at(count, (m, d), 1)
    np.add.at(fraud, (m, d), txns["is_fraud"].to_numpy())
    np.add.at(total, (m, d), txns["amount"].to_numpy())
    count_30d = _window_sums(count, 30)
    fraud_30d = _window_sums(fraud, 30)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(count_30d > 0, fraud_30d / count_30d, 0.0)
        ticket = np.where(count_30d > 0, _window_sums(total, 30) / count_30d, np.nan)
    stats = _grid_frame(
        "merchant_id",
        N_MERCHANTS,
        DAY,
        n + 1,
        {
            "chargeback_rate_30d": np.round(rate, 4),
            "avg_ticket_30d": np.round(ticket, 2),
            "txn_count_7d": _window_sums(count, 7),
            "is_high_risk": ((rate > 0.05) & (count_30d >= 20)).astype(np.int64),
        },
    )
    stats["created"] = stats["event_timestamp"] + pd.Timedelta(minutes=30)
    columns = [
        "merchant_id",
        "event_timestamp",
        "created",
        "chargeback_rate_30d",
        "avg_ticket_30d",
        "txn_count_7d",
        "is_high_risk",
    ]
    return stats[columns]


def generate(seed: int = 42) -> Dataset:
    """Build every frame from `seed`; the same seed always gives identical frames."""
    rng = np.random.default_rng(seed)
    users = user_features(rng)
    txns = transactions(rng)
    return Dataset(
        frames={
            "user_features.parquet": users,
            "fraud/transactions.parquet": txns,
            "fraud/user_txn_stats.parquet": user_txn_stats(txns, rng),
            "fraud/merchant_stats.parquet": merchant_stats(txns),
        }
    )


def read_manifest(data_dir: Path) -> dict | None:
    """Return what `write_dataset` recorded about the data in `data_dir`, or None."""
    try:
        return json.loads((data_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current(data_dir: Path, seed: int) -> bool:
    """True when `data_dir` holds every file generated by this generator version from `seed`."""
    manifest = read_manifest(data_dir)
    if not manifest or manifest.get("seed") != seed or manifest.get("version") != DATA_VERSION:
        return False
    return all((data_dir / name).is_file() for name in manifest.get("files", []))


def make_readable(data_dir: Path) -> None:
    """Let every user read the generated files and list their folders (files gain 0444,
    folders 0555; nothing is taken away).

    The data is the course's public data, and a sandbox runs student code as an unprivileged
    uid that must read it: a 0600 file (mkstemp's mode, or an old install's) would make the
    sandbox keep our own uid instead (`grader.sandbox.bubblewrap.readable_by_others`). Files
    we may not change are left as they are.
    """
    manifest = read_manifest(data_dir) or {}
    paths = [data_dir / name for name in manifest.get("files", [])]
    folders = {data_dir, *(p.parent for p in paths)}
    for path, bits in [*((f, 0o555) for f in folders), *((p, 0o444) for p in paths)]:
        try:
            mode = path.stat().st_mode & 0o7777
            if mode | bits != mode:
                os.chmod(path, mode | bits)
        except OSError:
            continue


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the data is public (see make_readable)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dataset(data_dir: Path, seed: int = 42) -> dict[str, int]:
    """Generate the data from `seed` into `data_dir`; return the row count of each file.

    Each file is written atomically; the manifest is written last, so an interrupted run is
    regenerated next time.
    """
    dataset = generate(seed)
    (data_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for name, frame in dataset.frames.items():
        _atomic_parquet(frame, data_dir / name)
    rows = {name: len(frame) for name, frame in dataset.frames.items()}
    manifest = {"seed": seed, "version": DATA_VERSION, "files": sorted(rows), "rows": rows}
    (data_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    make_readable(data_dir)
    return rows
