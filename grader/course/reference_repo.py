"""`grade setup`: generate `data/`, then apply and materialize the reference Feast repo.

Feast is imported lazily: it costs several seconds of CPU, and most verbs never need it.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from grader.course import datagen
from grader.course.kit import Kit

if TYPE_CHECKING:
    from feast import FeatureStore

REDIS_ENV = "REDIS_CONNECTION_STRING"
REDIS_DEFAULT = "localhost:6379"
CONFIGS = {"sqlite": "feature_store.yaml", "redis": "feature_store.redis.yaml"}


class SetupError(Exception):
    """Setup could not be done; the message is one line meant for the user."""


def redis_connection_string() -> str:
    """The Redis connection string the Redis variant of the repo will use."""
    return os.environ.get(REDIS_ENV) or REDIS_DEFAULT


def check_redis(connection_string: str, timeout_s: float = 2.0) -> None:
    """Raise `SetupError` unless a Redis server answers PING at `connection_string`."""
    import redis

    host_port, *options = connection_string.split(",")
    host, _, port = host_port.rpartition(":")
    kwargs: dict[str, Any] = {}
    for opt in options:
        key, _, value = opt.partition("=")
        if key.strip() == "db":
            kwargs["db"] = int(value)
        elif key.strip() == "password":
            kwargs["password"] = value
    try:
        client = redis.Redis(
            host=host or "localhost",
            port=int(port or 6379),
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            **kwargs,
        )
        client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise SetupError(
            f"no Redis server answers at {connection_string!r} ({exc.__class__.__name__}); "
            f"start redis-server or set {REDIS_ENV}=host:port"
        ) from None


def open_store(kit: Kit, online: str = "sqlite") -> FeatureStore:
    """A `FeatureStore` over the kit's reference repo with the given online store."""
    from feast import FeatureStore

    if online == "redis":
        os.environ.setdefault(REDIS_ENV, REDIS_DEFAULT)
    repo = kit.feature_repo
    return FeatureStore(repo_path=str(repo), fs_yaml_file=repo / CONFIGS[online])


def load_definitions(kit: Kit) -> ModuleType:
    """Import `feature_repo/definitions.py` by path (the repo is not a package)."""
    path = kit.feature_repo / "definitions.py"
    spec = importlib.util.spec_from_file_location("feature_repo_definitions", path)
    if spec is None or spec.loader is None:
        raise SetupError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_objects(kit: Kit) -> list[Any]:
    """The Feast objects the reference repo defines, in dependency order."""
    defs = load_definitions(kit)
    return [defs.user, defs.user_activity_fv, defs.user_activity_v1]


def _writable_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SetupError(f"cannot write the {what} folder {path}: {exc.strerror or exc}") from None


def ensure_data(kit: Kit, seed: int, force: bool, echo: Callable[[str], None]) -> None:
    """Generate `data/` from `seed` unless it is already current (or `force`)."""
    data_dir = kit.data_dir
    if not force and datagen.is_current(data_dir, seed):
        datagen.make_readable(data_dir)  # an older kit wrote its files 0600
        echo(f"data: present in {data_dir} (seed {seed}), kept; --force regenerates it")
        return
    _writable_dir(data_dir, "data")
    started = time.perf_counter()
    try:
        rows = datagen.write_dataset(data_dir, seed)
    except OSError as exc:
        reason = exc.strerror or exc
        raise SetupError(f"cannot write the data folder {data_dir}: {reason}") from None
    took = time.perf_counter() - started
    summary = ", ".join(f"{name} {n:,} rows" for name, n in rows.items())
    echo(f"data: generated with seed {seed} in {took:.1f}s: {summary}")


def run_setup(
    kit: Kit,
    *,
    seed: int = 42,
    online: str = "sqlite",
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Generate the data if needed, register the reference repo and load its online store.

    Re-running is safe: data is kept when current, `apply` is idempotent and `materialize`
    rewrites the same latest values. Raises `SetupError` with a one-line reason on bad input.
    """
    if online not in CONFIGS:
        raise SetupError(f"unknown online store {online!r}; use one of {', '.join(CONFIGS)}")
    if online == "redis":
        check_redis(redis_connection_string())
    ensure_data(kit, seed, force, echo)
    _writable_dir(kit.feature_repo / "data", "registry")

    started = time.perf_counter()
    store = open_store(kit, online)
    objects = reference_objects(kit)
    # store.apply([]) would register nothing: pass the objects themselves.
    store.apply(objects)
    names = ", ".join(f"{type(o).__name__} {o.name}" for o in objects)
    echo(f"apply: registered {names} ({time.perf_counter() - started:.1f}s)")

    import pandas as pd

    started = time.perf_counter()
    stamps = pd.read_parquet(kit.data_dir / "user_features.parquet", columns=["event_timestamp"])
    start = stamps["event_timestamp"].min().to_pydatetime()
    end = stamps["event_timestamp"].max().to_pydatetime()
    # A backfill of the whole range: materialize_incremental would start at now - ttl and
    # load nothing from 2024 data.
    store.materialize(start_date=start, end_date=end)
    echo(
        f"materialize: {start:%Y-%m-%d} .. {end:%Y-%m-%d} into the {online} online store "
        f"({time.perf_counter() - started:.1f}s)"
    )
