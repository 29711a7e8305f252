"""Claims: when does a clause of an answer state a key point, or its opposite?

A key point is made of claims (see `bank.toml`). A claim has a *subject* (what it is about:
"the online store", "materialization") and what it *says* of it ("only the latest values",
"offline .{0,40} online"). A clause states a claim when, in that clause:

- a `says` pattern matches, and
- a `subject` pattern matches in the same clause, or in an earlier clause of the same
  sentence joined to it by soft breaks only ("The online store, Redis for example, keeps ...",
  but not across "; " or "and the ..."), or in the previous sentence when
  the clause refers back with a pronoun ("It answers in milliseconds"); the nearest one counts,
  within `WINDOW` tokens in the same sentence, and no *rival* subject (an antonym of it, such
  as "offline" for "online") stands between the two;
- the negations bearing on the stating words (cues in their clause from a few tokens before
  them to the clause's end, outside the matched words, plus a contrast opener such as
  "instead of") are odd exactly when the claim is `negated`. So
  "future data is never used" states the negated claim "uses future data", and "it is not
  true that it never uses future data" states its opposite.

A clause *contradicts* a point when it states one of its claims with the wrong polarity, when
it states one of the point's `opposites` (explicit misconceptions: swapped roles, wrong
direction), or when swapping the bank's antonym pairs in it (online/offline, stale/fresh,
before/after...) makes it state a claim: "the online store keeps the full history" becomes
"the offline store keeps the full history". A clause that states the point itself never also
counts as contradicting it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache

from grader.quiz.matching import Analyzed

WINDOW = 12
"""Most tokens allowed between a subject and what is said of it in one sentence."""

PRONOUNS = frozenset({"it", "its", "they", "their", "them", "this", "these", "that", "which"})
"""Words that let a clause take its subject from the previous sentence."""


@dataclass(frozen=True)
class Claim:
    """One way of stating a key point: a subject and what is said of it."""

    says: tuple[re.Pattern[str], ...]
    """What is said: any of these patterns."""
    subject: tuple[re.Pattern[str], ...] = ()
    """Who or what it is said of; empty when it is the question's own topic."""
    negated: bool | None = False
    """True when the point is stated by denying `says` ("never uses future data"); None when
    either polarity states it ("prevents leakage" and "leaks" both show the idea)."""
    about: str = "any"
    """`topic`: does not count in clauses about the question's foil (see `foil_clauses`);
    `foil`: counts only there; `any`: counts everywhere."""


@dataclass(frozen=True)
class Hit:
    """A clause that states a claim (or, on the antonym-swapped text, its opposite)."""

    clause: int
    first: int
    """First token of the stating words."""
    last: int
    """Last token of the stating words."""
    negated: bool
    """Whether the clause denies what the claim `says`."""
    says_at: int = -1
    """First token of the words matched by `says` (the predicate; `first` may be its subject)."""
    kind: str = "states"
    """For a contradiction: `polarity` (a claim denied), `antonym` (a claim stated once an
    antonym pair is swapped) or `opposite` (one of the point's `opposites` stated)."""

    def clauses_in(self, answer: Analyzed) -> range:
        """The clause numbers the stating words run through."""
        return range(answer.clauses[self.first], answer.clauses[self.last] + 1)


_SPAN_CACHE: dict[tuple[tuple[re.Pattern[str], ...], str], list[tuple[int, int]]] = {}
_SPAN_CACHE_SIZE = 50_000


def _spans(patterns: tuple[re.Pattern[str], ...], answer: Analyzed) -> list[tuple[int, int]]:
    """Token spans of the matches of `patterns` (memoised: the same subject patterns are
    asked of the same text many times while one answer is scored)."""
    key = (patterns, answer.text)
    found = _SPAN_CACHE.get(key)
    if found is None:
        # Overlapping matches too: a match that starts at an early "offline" must not hide
        # the one inside it ("... materialization copies offline to online").
        shortest: dict[int, int] = {}
        for pattern in patterns:
            pos = 0
            while (m := pattern.search(answer.text, pos)) is not None:
                first, last = answer.token_span(m)
                if shortest.get(last, -1) < first:
                    shortest[last] = first
                if first + 1 >= len(answer.starts):
                    break
                pos = answer.starts[first + 1]
        # Of the matches that end on the same word, the shortest is the statement ("future
        # data" rather than "uses future data" or a run from an earlier mention).
        found = sorted((first, last) for last, first in shortest.items())
        if len(_SPAN_CACHE) >= _SPAN_CACHE_SIZE:
            _SPAN_CACHE.clear()
        _SPAN_CACHE[key] = found
    return found


@cache
def _literal_words(claim: Claim) -> frozenset[str]:
    """The word stems spelled out in a claim's patterns (to tell a pattern's own "no" from a
    negation that only falls inside one of its gaps)."""
    words: set[str] = set()
    for pattern in (*claim.says, *claim.subject):
        words.update(re.findall(r"[a-z0-9]+", pattern.pattern))
    return frozenset(words)


@cache
def _mentions(claim: Claim, stem: str) -> bool:
    """Whether `stem` is one of the words of the claim's patterns (or extends a prefix)."""
    return any(stem == w or (len(w) >= 4 and stem.startswith(w)) for w in _literal_words(claim))


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _gap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(b[0] - a[1], a[0] - b[1]) - 1


def find_hits(
    claim: Claim,
    answer: Analyzed,
    rivals_in: tuple[Analyzed, ...] = (),
    *,
    across_sentences: bool = True,
) -> list[Hit]:
    """Every clause of `answer` that states `claim`, with either polarity.

    `rivals_in` are the same answer with antonyms swapped: where the claim's subject matches
    there but not in `answer`, a rival subject stands ("offline" where the claim needs
    "online"), and a subject on the far side of a rival does not count. Without
    `across_sentences` the subject must stand in the same sentence (no "It ..." carry-over).
    """
    says = _spans(claim.says, answer)
    if not says:
        return []
    subjects = _spans(claim.subject, answer) if claim.subject else []
    rivals: list[tuple[int, int]] = []
    if claim.subject:
        rivals = [
            r
            for other in rivals_in
            for r in _spans(claim.subject, other)
            if not any(_overlap(r, s) for s in subjects)
        ]
    hits: list[Hit] = []
    for p in says:
        clause = answer.clauses[p[0]]
        span = p
        # A negation cue the pattern itself spells out ("no single database") belongs to it.
        literal = _literal_words(claim)
        matched = set(range(p[0], p[1] + 1))
        if claim.subject:
            s = _nearest_subject(subjects, rivals, p, answer, across_sentences)
            if s is None:
                continue
            span = (min(s[0], p[0]), max(s[1], p[1]))
            matched |= set(range(s[0], s[1] + 1))
        skip = {i for i in matched if answer.stems[i] in literal}
        start = span[0] if answer.clauses[span[0]] == clause else p[0]
        negated = answer.negations(start, p[1], skip) % 2 == 1
        hits.append(Hit(clause, span[0], span[1], negated, p[0]))
    return hits


def _nearest_subject(
    subjects: list[tuple[int, int]],
    rivals: list[tuple[int, int]],
    p: tuple[int, int],
    answer: Analyzed,
    across_sentences: bool = True,
) -> tuple[int, int] | None:
    clause, sentence = answer.clauses[p[0]], answer.sentences[p[0]]
    clause_start = answer.clause_bounds(clause)[0]
    refers_back = any(answer.raw[i] in PRONOUNS for i in range(clause_start, p[0] + 1))
    best: tuple[int, int] | None = None
    for s in subjects:
        if _overlap(s, p):
            continue
        same_clause = answer.clauses[s[0]] == clause
        earlier_in_sentence = (
            answer.sentences[s[0]] == sentence
            and s[1] < p[0]
            and not any(c in answer.hard for c in range(answer.clauses[s[1]] + 1, clause + 1))
        )
        previous_sentence = (
            across_sentences and answer.sentences[s[0]] == sentence - 1 and refers_back
        )
        if not (same_clause or earlier_in_sentence or previous_sentence):
            continue
        if not previous_sentence and _gap(s, p) > WINDOW:
            continue
        lo, hi = min(s[1], p[1]), max(s[0], p[0])
        if any(lo < r[0] and r[1] < hi for r in rivals):
            continue
        # A rival in the says' own clause at least as near as the subject is what it is
        # said of: "serving scans the warehouse" is about serving, not the warehouse.
        if any(
            answer.clauses[r[0]] == clause and not _overlap(r, p) and _gap(r, p) <= _gap(s, p)
            for r in rivals
        ):
            continue
        if best is None or _gap(s, p) < _gap(best, p):
            best = s
    return best


Variant = tuple[Analyzed, frozenset[int]]
"""An answer with one antonym pair swapped, and the indices of the swapped tokens."""


def antonym_variants(answer: Analyzed, antonyms: dict[str, str]) -> tuple[Variant, ...]:
    """One variant of `answer` per antonym pair in it, with that pair's words swapped.

    One pair at a time: swapping every pair at once would undo a contradiction that involves
    two pairs ("the offline store keeps the latest" would become "online ... oldest").
    """
    pairs = sorted({frozenset((s, antonyms[s])) for s in answer.stems if s in antonyms}, key=sorted)
    variants = []
    for pair in pairs:
        swapped = frozenset(i for i, s in enumerate(answer.stems) if s in pair)
        stems = tuple(antonyms[s] if s in pair else s for s in answer.stems)
        variants.append((answer.with_stems(stems), swapped))
    return tuple(variants)


@dataclass(frozen=True)
class Assessment:
    """What an answer's clauses do with one key point."""

    states: tuple[Hit, ...]
    """At most one hit per clause that states the point (first claim that matches)."""
    contradicts: tuple[Hit, ...]
    """Hits in clauses that state the opposite and do not also state the point."""


REFERS_BACK = PRONOUNS | {"so", "thus", "hence", "then", "otherwise", "such", "there"}
"""A sentence opening with one of these continues the previous sentence's subject."""


@dataclass(frozen=True)
class Context:
    """Which clauses of an answer speak about the question's foil, and which about its topic."""

    foil: frozenset[int] = frozenset()
    """Clauses about the foil ("a plain join"): `about = "topic"` claims do not count there."""
    topic: frozenset[int] | None = None
    """Clauses known to be about the topic; None when the question names no foil. A claim
    `about = "topic"` is read as contradicted only there: a misconception needs a clear
    subject, credit only needs the foil to be out of the way."""


def context(
    answer: Analyzed, foils: tuple[re.Pattern[str], ...], topic: tuple[re.Pattern[str], ...]
) -> Context:
    """Find the clauses of `answer` about the question's foil and about its topic.

    The answer starts on its topic. A mention of the foil (or of the topic) puts the rest of
    its sentence on it, and the next sentence too when that opens by referring back ("That
    leaks ...", "It uses ..."); any other sentence is on neither until it names one. Contrast
    clauses ("unlike a plain join") name the foil only to set it aside and change nothing.
    """
    if not foils:
        return Context()
    foil_at = {first for first, _ in _spans(foils, answer)}
    topic_at = {first for first, _ in _spans(topic, answer)}
    on_foil: set[int] = set()
    on_topic: set[int] = set()
    state = "topic"
    for i, token in enumerate(answer.raw):
        clause = answer.clauses[i]
        new_sentence = i == 0 or answer.sentences[i] != answer.sentences[i - 1]
        if new_sentence and i and token not in REFERS_BACK:
            state = "neither"
        if clause not in answer.contrast:
            if i in foil_at:
                state = "foil"
            elif i in topic_at:
                state = "topic"
        if state == "foil":
            on_foil.add(clause)
        elif state == "topic":
            on_topic.add(clause)
    return Context(frozenset(on_foil), frozenset(on_topic - on_foil))


def _counts(claim: Claim, hit: Hit, where: Context, *, against: bool = False) -> bool:
    if claim.about == "topic":
        if against and where.topic is not None:
            return hit.clause in where.topic
        return hit.clause not in where.foil
    if claim.about == "foil":
        return hit.clause in where.foil
    return True


def _agrees(claim: Claim, hit: Hit) -> bool:
    return claim.negated is None or hit.negated == claim.negated


def assess(
    claims: tuple[Claim, ...],
    opposites: tuple[Claim, ...],
    answer: Analyzed,
    variants: tuple[Variant, ...],
    where: Context | None = None,
) -> Assessment:
    """Which clauses of `answer` state the point made of `claims`, and which contradict it.

    `variants` are `answer` with antonyms swapped (`antonym_variants`); a hit in one counts as
    a contradiction only when a swapped token that is one of the claim's own words is among
    its stating words.
    """
    where = where or Context()
    others = tuple(v for v, _ in variants)
    states: dict[int, Hit] = {}
    against: dict[int, Hit] = {}
    for claim in claims:
        for hit in find_hits(claim, answer, others):
            if _agrees(claim, hit):
                if _counts(claim, hit, where):
                    states.setdefault(hit.clause, hit)
            elif _counts(claim, hit, where, against=True):
                against.setdefault(hit.clause, replace(hit, kind="polarity"))
        for variant, swapped in variants:
            # Only a swap that puts one of the claim's own words in place can make it state
            # the claim: "online" swapped in where the claim speaks of the online store.
            relevant = {i for i in swapped if _mentions(claim, variant.stems[i])}
            if not relevant:
                continue
            for hit in find_hits(claim, variant, (answer,)):
                changed = any(hit.first <= i <= hit.last for i in relevant)
                if changed and _agrees(claim, hit) and _counts(claim, hit, where, against=True):
                    against.setdefault(hit.clause, replace(hit, kind="antonym"))
    for claim in opposites:
        # An accusation needs its subject in the same sentence.
        for hit in find_hits(claim, answer, others, across_sentences=False):
            if _agrees(claim, hit) and _counts(claim, hit, where, against=True):
                against.setdefault(hit.clause, replace(hit, kind="opposite"))
    # An explicit opposite that takes in the stating words is the more specific reading ("keep
    # the documentation to the data type" mentions documentation but says the wrong thing).
    for clause, hit in against.items():
        stated = states.get(clause)
        if (
            hit.kind == "opposite"
            and stated
            and hit.first <= stated.first <= stated.last <= hit.last
        ):
            del states[clause]
    stating = {c for h in states.values() for c in h.clauses_in(answer)}
    contradicts = tuple(
        h for _, h in sorted(against.items()) if not stating.intersection(h.clauses_in(answer))
    )
    return Assessment(tuple(h for _, h in sorted(states.items())), contradicts)
