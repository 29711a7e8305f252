"""Checks shared by the public and hidden suites of ex2 (trusted side: they judge returned data).

Every assertion message is written for the learner.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def when(stamp) -> str:
    """A timestamp as the learner reads it: 2024-01-10 00:00 (UTC unless it says otherwise)."""
    stamp = pd.Timestamp(stamp)
    text = stamp.strftime("%Y-%m-%d %H:%M")
    if stamp.second:
        text = stamp.strftime("%Y-%m-%d %H:%M:%S")
    if stamp.microsecond or stamp.nanosecond:
        text = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text + (f" {stamp.tzname()}" if stamp.tzinfo is not None else "")


def show(value) -> str:
    """A value as the learner reads it; every kind of missing value reads `missing`."""
    try:
        if pd.isna(value):
            return "missing"
    except (TypeError, ValueError):
        pass
    return repr(value.item() if hasattr(value, "item") else value)


def shows(values) -> str:
    return "[" + ", ".join(show(v) for v in values) + "]"


def same(got, want) -> bool:
    """`got` equals `want`; want None means any missing value (NaN, None, NA, NaT)."""
    try:
        got_missing = bool(pd.isna(got))
    except (TypeError, ValueError):
        return False
    if want is None:
        return got_missing
    if got_missing:
        return False
    if isinstance(want, float):
        try:
            return math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    try:
        return bool(got == want)
    except (TypeError, ValueError):
        return False


def join(student, call: str, entity_df: pd.DataFrame, feature_df: pd.DataFrame, **kwargs):
    """Call the student's join and check it returns one row per entity row."""
    got = student.point_in_time_join(entity_df, feature_df, **kwargs)
    assert isinstance(got, pd.DataFrame), (
        f"{call}; got a value of type {type(got).__name__}, expected a pandas DataFrame with "
        "one row per entity row."
    )
    assert len(got) == len(entity_df), (
        f"{call}; got {len(got)} rows, expected {len(entity_df)}: the result has exactly one "
        "row per entity row, whether or not a feature row matched."
    )
    return got


def values(got: pd.DataFrame, column: str, call: str) -> list:
    assert column in got.columns, (
        f"{call}; the result has no column {column!r} (its columns: {list(got.columns)}), "
        "expected the entity columns followed by the feature columns."
    )
    series = got[column]
    assert isinstance(series, pd.Series), (
        f"{call}; the result has the column {column!r} more than once, expected it once."
    )
    return series.tolist()


def check(got: pd.DataFrame, column: str, want: list, call: str, why: str) -> None:
    have = values(got, column, call)
    ok = len(have) == len(want) and all(same(g, w) for g, w in zip(have, want, strict=True))
    assert ok, f"{call}; got {column} = {shows(have)}, expected {shows(want)}: {why}"


def numbers(series: pd.Series) -> np.ndarray:
    """A column as float64, every kind of missing (and anything not a number) as NaN."""
    return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy()


def first_differences(got, want, entity_df, column, limit=3) -> str:
    got_v = numbers(got[column])
    want_v = numbers(want[column])
    bad = ~(
        (np.isnan(got_v) & np.isnan(want_v))
        | np.isclose(got_v, want_v, rtol=1e-6, atol=1e-9, equal_nan=False)
    )
    rows = np.flatnonzero(bad)
    if not len(rows):
        return ""
    examples = []
    for i in rows[:limit]:
        user = entity_df["user_id"].iat[i]
        at = when(entity_df["event_timestamp"].iat[i])
        examples.append(
            f"row {i} (user {user} at {at}): got {show(got_v[i])}, Feast gave {show(want_v[i])}"
        )
    return f"{len(rows)} of {len(got_v)} rows of {column!r} differ, e.g. " + ("; ".join(examples))
