"""Harness of ex4_feast_e2e: describe the Feast repo a student's functions built, as data.

`repo_state` runs in a sandboxed JOB (`student.job`): a fresh worker that never loaded the
student's module, so the submission cannot replace it. It reads only files (the repo's
`feature_store.yaml` with `yaml.safe_load`, and the registry's bytes, size-capped); it never
opens a `FeatureStore` (a yaml can name a store class, which Feast would import).
`summarize`, `Pipeline` and the constants run on the TRUSTED side (the suites): `summarize`
parses the registry bytes with the protobuf classes only, within caps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MAX_CONFIG_BYTES = 64 * 1024
MAX_REGISTRY_BYTES = 1024 * 1024
"""A real registry of this exercise is a few KiB; a forged one must not cost the grader."""
MAX_OBJECTS = 200
"""Entities, views and services the trusted side reads out of a registry, at most."""


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"{what} {path} is larger than {cap // 1024} KiB")
    return data


def _inside(repo: Path, path: Any) -> str | None:
    """`path` from the config resolved the way Feast does (relative to the repo), or None."""
    if path is None:
        return None
    text = str(path)
    if "://" in text:
        return text
    full = Path(text)
    return str((full if full.is_absolute() else repo / full).resolve())


def _store(config: dict, key: str, default_type: str) -> dict[str, Any]:
    value = config.get(key)
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, dict):
        return value
    return {"type": default_type}


def repo_state(repo_dir: str) -> dict[str, Any]:
    """The config of `repo_dir/feature_store.yaml` as plain strings, and the registry's bytes.

    Runs in a job (no student module loaded). Raises a learner-facing error when the files
    are missing or not what Feast reads.
    """
    import yaml

    repo = Path(repo_dir).resolve()
    path = repo / "feature_store.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"there is no feature_store.yaml in {repo}")
    config = yaml.safe_load(_read_capped(path, MAX_CONFIG_BYTES, "the config"))
    if not isinstance(config, dict):
        raise ValueError("feature_store.yaml is not a mapping of settings")
    registry = config.get("registry")
    registry_path = registry.get("path") if isinstance(registry, dict) else registry
    online = _store(config, "online_store", "sqlite")
    offline = _store(config, "offline_store", "dask")
    state: dict[str, Any] = {
        "project": str(config.get("project", "")),
        "offline_store": str(offline.get("type", "")),
        "online_store": str(online.get("type", "")),
        "online_path": _inside(repo, online.get("path", "data/online.db")),
        "registry_path": _inside(repo, registry_path),
        "registry": b"",
    }
    where = state["registry_path"]
    if where is not None and "://" not in where and Path(where).is_file():
        state["registry"] = _read_capped(Path(where), MAX_REGISTRY_BYTES, "the registry")
    return state


# Feast's ValueType enum names -> the names of Feast's types (`str(field.dtype)`).
_FEAST_TYPE = {
    "FLOAT": "Float32",
    "DOUBLE": "Float64",
    "INT32": "Int32",
    "INT64": "Int64",
    "STRING": "String",
    "BOOL": "Bool",
    "BYTES": "Bytes",
    "UNIX_TIMESTAMP": "UnixTimestamp",
}


def summarize(state: Any) -> dict[str, Any]:
    """Trusted side: the summary the suites judge, from a `repo_state` answer.

    Only the views, entities and services of the config's project count (as for
    `FeatureStore.list_*`). Raises `ValueError` (learner-facing) on anything malformed.
    """
    from google.protobuf.message import DecodeError

    from grader.harness.protos import registry_protos

    Registry, ValueType = registry_protos()  # not `import feast`: seconds of CPU for nothing
    if not isinstance(state, dict) or not isinstance(state.get("registry"), bytes):
        raise ValueError("the grader got no readable repo state back")
    data: bytes = state["registry"]
    if not data:
        raise ValueError(f"there is no registry file at {state.get('registry_path')!r}")
    if len(data) > MAX_REGISTRY_BYTES:
        raise ValueError(f"the registry is larger than {MAX_REGISTRY_BYTES // 1024} KiB")
    try:
        registry = Registry.FromString(data)
    except DecodeError as exc:
        raise ValueError(f"the registry file is not a Feast registry: {exc}") from None
    counts = len(registry.entities) + len(registry.feature_views)
    counts += len(registry.feature_services)
    if counts > MAX_OBJECTS:
        raise ValueError(
            f"the registry holds {counts} entities, views and services; a repo of this "
            f"exercise holds a handful (the grader reads at most {MAX_OBJECTS})"
        )
    project = str(state.get("project", ""))

    def type_name(value: int) -> str:
        try:
            return ValueType.Enum.Name(value)
        except ValueError:
            return str(value)

    summary: dict[str, Any] = {
        key: state.get(key)
        for key in ("project", "offline_store", "online_store", "online_path", "registry_path")
    }
    summary["entities"] = [
        {
            "name": e.spec.name,
            "join_key": e.spec.join_key,
            "value_type": type_name(e.spec.value_type),
        }
        for e in registry.entities
        if e.spec.project == project and not e.spec.name.startswith("__dummy")
    ]
    views = []
    for view in registry.feature_views:
        spec = view.spec
        if spec.project != project:
            continue
        ends = [i.end_time.ToDatetime(tzinfo=UTC) for i in view.meta.materialization_intervals]
        source = spec.batch_source
        views.append(
            {
                "name": spec.name,
                "join_keys": [c.name for c in spec.entity_columns],
                "features": {
                    f.name: _FEAST_TYPE.get(type_name(f.value_type), type_name(f.value_type))
                    for f in spec.features
                },
                "ttl_seconds": spec.ttl.seconds + spec.ttl.nanos / 1e9,
                "online": bool(spec.online),
                "source_path": source.file_options.uri,
                "timestamp_field": source.timestamp_field,
                "most_recent_end_time": max(ends).isoformat() if ends else None,
            }
        )
    summary["feature_views"] = sorted(views, key=lambda v: v["name"])
    summary["feature_services"] = sorted(
        (
            {
                "name": service.spec.name,
                "features": [
                    [p.feature_view_name_alias or p.feature_view_name, c.name]
                    for p in service.spec.features
                    for c in p.feature_columns
                ],
            }
            for service in registry.feature_services
            if service.spec.project == project
        ),
        key=lambda s: s["name"],
    )
    return summary


# ------------------------------------------------------------------ on the trusted side

START = datetime(2024, 1, 1)
END = datetime(2024, 3, 1)
VIEW = "user_activity"
SERVICE = "user_activity_v1"
#: The lesson's six features and their Feast types, in the data file's order.
FEATURES = {
    "daily_spend": "Float32",
    "num_sessions": "Int64",
    "avg_session_duration_min": "Float32",
    "items_viewed": "Int64",
    "items_purchased": "Int64",
    "is_premium": "Int64",
}
#: Deliberately not in file order: results must follow the request.
SHORT = [
    "is_premium",
    "daily_spend",
    "items_viewed",
    "avg_session_duration_min",
    "num_sessions",
    "items_purchased",
]
REFS = [f"{VIEW}:{name}" for name in SHORT]
TTL = timedelta(days=7)
FLOAT32_RTOL = 1e-6


class Pipeline:
    """write_repo -> apply_repo -> materialize_online [START, END] on a fresh repo, once.

    Each step's value or failure is kept; `need(step)` gives the value or raises a
    learner-facing `AssertionError` naming the first step that failed (timeouts and crashes
    pass through unchanged, so they keep their status).
    """

    #: Step -> the steps it needs. The summary is still read when only materialize failed.
    NEEDS = {
        "write_repo": (),
        "apply_repo": ("write_repo",),
        "materialize_online": ("apply_repo",),
        "summary": ("apply_repo",),
    }

    def __init__(self, student: Any, repo: Path, data_path: Path) -> None:
        from grader.sandbox.proxy import StudentError

        self.repo = str(repo)
        self.data_path = str(data_path)
        self.values: dict[str, Any] = {}
        self.failures: dict[str, tuple[str, BaseException]] = {}
        calls = {
            "write_repo": lambda: student.write_repo(self.repo, self.data_path),
            "apply_repo": lambda: student.apply_repo(self.repo, _timeout=180),
            "materialize_online": lambda: student.call(
                "materialize_online", self.repo, START, END, _timeout=180
            ),
            # In a fresh job: the student's worker could have replaced any helper it runs.
            "summary": lambda: self.summarize(student.job("feast_repo:repo_state", self.repo)),
        }
        for step, needs in self.NEEDS.items():
            blocked = [n for n in needs if n in self.failures]
            if blocked:
                self.failures[step] = self.failures[blocked[0]]
                continue
            try:
                self.values[step] = calls[step]()
            except StudentError as exc:
                self.failures[step] = (step, self.explain(step, exc))
            except Exception as exc:  # noqa: BLE001 - timeouts and crashes keep their type
                self.failures[step] = (step, exc)

    def summarize(self, state: Any) -> dict[str, Any]:
        try:
            return summarize(state)
        except ValueError as exc:
            raise AssertionError(
                f"Read the repo write_repo wrote after apply_repo: {exc}."
            ) from None

    def describe(self, step: str) -> str:
        if step == "write_repo":
            return f"write_repo({self.repo!r}, {self.data_path!r})"
        if step == "materialize_online":
            return f"materialize_online(repo_dir, {START:%Y-%m-%d}, {END:%Y-%m-%d})"
        if step == "summary":
            return "write_repo and apply_repo, then read repo_dir's feature_store.yaml and registry"
        return f"{step}(repo_dir)"

    def explain(self, step: str, exc: Any) -> AssertionError:
        if exc.not_implemented:
            return AssertionError(f"Not done yet: {step} still raises NotImplementedError.")
        where = f" ({exc.where})" if exc.where else ""
        return AssertionError(
            f"Called {self.describe(step)}: it raised {exc.type_name}: {exc.message}{where}"
        )

    def need(self, *steps: str) -> Any:
        """The value of the last of `steps`, once every one of them succeeded."""
        for step in steps:
            if step in self.failures:
                origin, exc = self.failures[step]
                if origin != step and isinstance(exc, AssertionError):
                    raise AssertionError(f"{exc} (so {step} could not run)")
                raise exc
        return self.values[steps[-1]]
