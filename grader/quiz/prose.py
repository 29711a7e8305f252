"""Is an answer written as prose? Word-order and list checks that need no language model.

A keyword list or a shuffle of a good answer's words can contain every key term; what it lacks
is the order of English. Tokens are mapped to a handful of grammatical classes (determiner,
preposition, auxiliary, pronoun, conjunction, subordinator, particle, -ed/-ing word, other) and
a class-bigram model is estimated from the bank's own model answers. `order_score` is the mean
log ratio of the answer's class bigrams under that model against the classes' plain
frequencies: prose scores clearly above zero (about 0.07-0.3 on the test fixtures), the same
words shuffled score about zero or below. The model is 81 numbers computed at load time from
the bank; nothing is downloaded.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from grader.quiz.matching import Analyzed

_CLASSES = {
    "D": "the a an this these those its their each every my our your his her some any no",
    "P": "of in on at by for from with into onto over under about after before between during "
    "through until without than via per",
    "T": "to",
    "A": "is are was were be been being am has have had do does did can could will would shall "
    "should may might must",
    "N": "it they we you i he she them us there",
    "C": "and or but nor",
    "S": "so because while whereas although though if unless when where which that who",
    "X": "not never only also just still even",
}
_CLASS_OF = {w: c for c, words in _CLASSES.items() for w in words.split()}
_ALL = (*_CLASSES, "V", "W")
_SMOOTH = 0.5


def word_class(token: str) -> str:
    """The grammatical class of a lower-case token (`W` for any other word)."""
    if token in _CLASS_OF:
        return _CLASS_OF[token]
    if len(token) > 4 and token.endswith(("ed", "ing")):
        return "V"
    return "W"


def _pairs(answer: Analyzed) -> list[tuple[str, str]]:
    classes = [word_class(t) for t in answer.raw]
    return [
        (classes[i], classes[i + 1])
        for i in range(len(classes) - 1)
        if answer.sentences[i] == answer.sentences[i + 1]
    ]


@dataclass(frozen=True)
class OrderModel:
    """Class-bigram and class frequencies of some prose."""

    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    following: dict[str, int] = field(default_factory=dict)
    """How often each class is followed by any class."""
    classes: dict[str, int] = field(default_factory=dict)
    """How often each class follows any class."""

    def log_ratio(self, a: str, b: str) -> float:
        """log P(b | a) / P(b), both add-half smoothed."""
        k = len(_ALL)
        p_ab = (self.pairs.get((a, b), 0) + _SMOOTH) / (self.following.get(a, 0) + _SMOOTH * k)
        total = sum(self.classes.values())
        p_b = (self.classes.get(b, 0) + _SMOOTH) / (total + _SMOOTH * k)
        return math.log(p_ab / p_b)


def train_order_model(texts: list[Analyzed]) -> OrderModel:
    """Estimate an `OrderModel` from analysed prose (the bank's model answers)."""
    pairs: Counter[tuple[str, str]] = Counter()
    for text in texts:
        pairs.update(_pairs(text))
    following: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    for (a, b), n in pairs.items():
        following[a] += n
        classes[b] += n
    return OrderModel(dict(pairs), dict(following), dict(classes))


def order_score(model: OrderModel, answer: Analyzed) -> tuple[float, int]:
    """Mean log ratio of `answer`'s class bigrams under `model`, and how many there are."""
    pairs = _pairs(answer)
    if not pairs or not model.pairs:
        return 0.0, len(pairs)
    return sum(model.log_ratio(a, b) for a, b in pairs) / len(pairs), len(pairs)


def short_clause_share(answer: Analyzed, longest: int = 2) -> tuple[float, int]:
    """Share of the answer's clauses that have at most `longest` words, and the clause count.

    A comma-separated list ("offline store, Parquet, Redis, latency") is mostly such clauses.
    """
    sizes = Counter(answer.clauses)
    if not sizes:
        return 0.0, 0
    return sum(1 for n in sizes.values() if n <= longest) / len(sizes), len(sizes)
