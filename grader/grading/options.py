"""How to grade one submission: limits, time budget, which suites; as plain data too."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grader.grading.oracle import default_cache_dir
from grader.sandbox import bubblewrap
from grader.sandbox.bubblewrap import Limits


@dataclass
class GradingOptions:
    """How to grade: limits, time budget, which suites."""

    limits: Limits = field(default_factory=Limits)
    submission_timeout_s: float = 600.0
    """Wall-clock budget of one submission, all exercises together."""
    include_hidden: bool = True
    """Run the hidden suites where they are present."""
    use_bwrap: bool | None = None
    """None: use bubblewrap when it works here."""
    cache_dir: Path = field(default_factory=default_cache_dir)
    exitfirst: bool = False
    """Stop at the first test that does not pass (mutation testing: a mutant is killed then)."""
    zygote: Any = None
    """A warm `grader.sandbox.warm.Zygote` to fork sandboxed workers from (batch only), or None."""

    def uses_bwrap(self) -> bool:
        """Whether workers run under bubblewrap: `use_bwrap`, or where unset, whether it
        works here."""
        return bubblewrap.bwrap_works() if self.use_bwrap is None else self.use_bwrap


def options_to_dict(options: GradingOptions) -> dict[str, Any]:
    """`GradingOptions` as plain JSON data (to ship to another process or machine)."""
    return {
        "limits": asdict(options.limits),
        "submission_timeout_s": options.submission_timeout_s,
        "include_hidden": options.include_hidden,
        "use_bwrap": options.use_bwrap,
        "cache_dir": str(options.cache_dir),
        "exitfirst": options.exitfirst,
    }


def options_from_dict(data: dict[str, Any]) -> GradingOptions:
    """Inverse of `options_to_dict`."""
    return GradingOptions(
        limits=Limits(**data["limits"]),
        submission_timeout_s=float(data["submission_timeout_s"]),
        include_hidden=bool(data["include_hidden"]),
        use_bwrap=data["use_bwrap"],
        cache_dir=Path(data["cache_dir"]),
        exitfirst=bool(data.get("exitfirst", False)),
    )
