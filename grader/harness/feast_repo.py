"""Harness of ex4_feast_e2e: describe the Feast repo a student's functions built, as data.

`registry_summary` runs INSIDE the sandboxed worker (`function(student_module, ...)`): it opens
the repo with `FeatureStore(repo_path=...)`, wherever the student's `feature_store.yaml` puts
the registry, and returns plain values the trusted suites can judge. `Pipeline` and the
constants run on the TRUSTED side (the suites). Nothing here imports feast at module level.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def _inside(repo: Path, path: Any) -> str | None:
    """`path` from the config resolved the way Feast does (relative to the repo), or None."""
    if path is None:
        return None
    text = str(path)
    if "://" in text:
        return text
    full = Path(text)
    return str((full if full.is_absolute() else repo / full).resolve())


def registry_summary(module: Any, repo_dir: str) -> dict[str, Any]:
    """Config and registry contents of the repo in `repo_dir` (the student's own yaml)."""
    from feast import FeatureStore

    repo = Path(repo_dir).resolve()
    store = FeatureStore(repo_path=str(repo))
    config = store.config
    registry = config.registry
    registry_path = registry if isinstance(registry, str) else getattr(registry, "path", None)
    online = config.online_store
    summary: dict[str, Any] = {
        "project": str(config.project),
        "offline_store": str(getattr(config.offline_store, "type", "")),
        "online_store": str(getattr(online, "type", "")),
        "online_path": _inside(repo, getattr(online, "path", None)),
        "registry_path": _inside(repo, registry_path),
        "entity_key_serialization_version": int(config.entity_key_serialization_version),
    }
    summary["entities"] = [
        {"name": e.name, "join_key": e.join_key, "value_type": e.value_type.name}
        for e in store.list_entities()
        if not e.name.startswith("__dummy")
    ]
    views = []
    for view in store.list_feature_views():
        source = view.batch_source
        end = view.most_recent_end_time
        views.append(
            {
                "name": view.name,
                "join_keys": [c.name for c in view.entity_columns],
                "features": {f.name: str(f.dtype) for f in view.features},
                "ttl_seconds": view.ttl.total_seconds() if view.ttl is not None else 0.0,
                "online": bool(view.online),
                "source_path": str(getattr(source, "path", "") or ""),
                "timestamp_field": str(getattr(source, "timestamp_field", "") or ""),
                "most_recent_end_time": end.isoformat() if end is not None else None,
            }
        )
    summary["feature_views"] = sorted(views, key=lambda v: v["name"])
    summary["feature_services"] = sorted(
        (
            {
                "name": service.name,
                "features": [
                    [p.name_to_use(), f.name]
                    for p in service.feature_view_projections
                    for f in p.features
                ],
            }
            for service in store.list_feature_services()
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
            "summary": lambda: student.harness(
                "feast_repo:registry_summary", self.repo, _timeout=120
            ),
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

    def describe(self, step: str) -> str:
        if step == "write_repo":
            return f"write_repo({self.repo!r}, {self.data_path!r})"
        if step == "materialize_online":
            return f"materialize_online(repo_dir, {START:%Y-%m-%d}, {END:%Y-%m-%d})"
        if step == "summary":
            return "write_repo and apply_repo, then opened FeatureStore(repo_path=repo_dir)"
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
