"""Ids are data, not paths: each submission of a batch gets a unique id and a safe file stem.

A submission's id is its entry's name without `.zip`, control characters stripped
(`grader.grading.staging.submission_id`); two entries that would share one (a folder `x` and
`x.zip`) keep their whole entry names instead, so both are graded under distinct ids.

Its outputs are `OUT/<stem>.json` and `OUT/<stem>.gradescope.json`. The stem is the id itself
when that is a safe file name (SPEC 6: letters, digits, `.`, `_`, `-`, at most 100 characters;
here also not starting with `.`) that collides with no other output; otherwise it is
`<slug>-<hash8>`, a readable slug of the id and 8 hex digits of its SHA-256. An id collides
when it is one of the batch's own stems (`summary`, `gradebook`, `regrade`), ends in
`.gradescope` (its scorecard would be `<victim>.gradescope.json`), or equals another stem when
case is ignored (they would be one file on a case-insensitive disk). Stems depend only on the
set of ids, so `--resume` finds the same files again.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path

from grader.grading.safe_text import clean_line
from grader.grading.staging import submission_id

MAX_STEM = 100
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
BATCH_STEMS = frozenset({"summary", "gradebook", "regrade"})
"""Stems of the batch's own files (`summary.json`, `gradebook.csv`, `regrade.csv`)."""
RESERVED_SUFFIX = ".gradescope"
SLUG_CHARS = 40


def scorecard_name(stem: str) -> str:
    return f"{stem}.json"


def gradescope_name(stem: str) -> str:
    return f"{stem}.gradescope.json"


def _digest(text: str) -> str:
    """SHA-256 hex of `text`; a file name's undecodable bytes are hashed as the raw bytes."""
    return hashlib.sha256(os.fsencode(text)).hexdigest()


def slug(text: str) -> str:
    """A short, readable, safe rendering of `text` (ASCII letters, digits, `.`, `_`, `-`)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cut = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_text).strip(".-")[:SLUG_CHARS].strip(".-")
    return cut or "submission"


def unique_ids(paths: list[Path]) -> dict[Path, str]:
    """Each entry's id; entries that would share one are told apart, deterministically.

    First by their whole (cleaned) entry names (`x` and `x.zip`), then, where cleaning made
    names equal, by a hash of the raw name, then by a counter: every entry is graded.
    """
    ids = {p: submission_id(p) for p in paths}
    fallbacks = (
        lambda p, _n: clean_line(p.name),
        lambda p, _n: f"{clean_line(p.name)}~{_digest(p.name)[:8]}",
        lambda p, n: f"{clean_line(p.name)}~{_digest(p.name)[:8]}~{n}",
    )
    for fallback in fallbacks:
        counts = Counter(ids.values())
        clashing = sorted((p for p in paths if counts[ids[p]] > 1), key=lambda p: p.name)
        if not clashing:
            break
        for n, path in enumerate(clashing, 1):
            ids[path] = fallback(path, n)
    if len(set(ids.values())) != len(ids):  # only a name built to hit the counter gets here
        for n, path in enumerate(sorted(paths, key=lambda p: p.name), 1):
            ids[path] = f"{ids[path]}~{n}"
    return ids


def _keepable(sid: str) -> bool:
    folded = sid.casefold()
    return (
        SAFE_NAME.fullmatch(sid) is not None
        and folded not in BATCH_STEMS
        and not folded.endswith(RESERVED_SUFFIX)
    )


def assign_stems(ids: list[str]) -> dict[str, str]:
    """The file stem of each (distinct) id: the id itself where safe, else `<slug>-<hash8>`."""
    stems = {sid: sid if _keepable(sid) else None for sid in ids}
    folded = Counter(s.casefold() for s in stems.values() if s is not None)
    for sid, stem in stems.items():
        if stem is not None and folded[stem.casefold()] > 1:
            stems[sid] = None  # "Alice" and "alice": both hashed, neither wins
    kept = {s.casefold() for s in stems.values() if s is not None}
    length = 8
    hashed = {sid: f"{slug(sid)}-{_digest(sid)[:length]}" for sid, s in stems.items() if s is None}
    while True:
        counts = Counter(h.casefold() for h in hashed.values())
        bad = [sid for sid, h in hashed.items() if counts[h.casefold()] > 1 or h.casefold() in kept]
        if not bad or length >= 64:
            break
        length *= 2  # a (very unlikely, or contrived) clash: longer hashes for those ids only
        for sid in bad:
            hashed[sid] = f"{slug(sid)}-{_digest(sid)[:length]}"
    stems.update(hashed)
    return {sid: stem for sid, stem in stems.items() if stem is not None}
