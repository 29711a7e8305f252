"""Text normalisation and key-point pattern matching for free-text answers.

An answer is normalised to a sequence of tokens: lower case, punctuation dropped, contractions
expanded ("doesn't" -> "does not"), British -ise spellings folded into -ize, and inflections
stripped ("leaks", "leaked", "leaking" -> "leak"). Patterns in the bank go through the same
stemmer, so an author writes plain words and every simple word form matches; derived forms
("leakage") are reached with a prefix (``leak*``).

Pattern syntax (a regular expression over the stemmed, space-joined tokens):

- plain words are stemmed: ``materialized view`` matches "Materialises views";
- ``word*`` matches any token that starts with the stem of ``word``;
- `` ... `` (surrounded by spaces) allows up to six words in between;
- `` .{0,40} `` (surrounded by spaces) allows up to 40 characters of whole words in between;
- anything else is ordinary ``re`` syntax (``(a|b)``, ``.{0,40}``, ``\\d+``).

A match counts only when it is not negated: a negation cue (``not``, ``no``, ``never``,
``without``, ...) among the three tokens before it, inside the same clause, cancels it. Put the
negation inside the pattern when the point itself is negative ("no single database").
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

NEGATION_CUES = frozenset({"not", "no", "never", "without", "nor", "neither", "none", "hardly"})
"""Raw tokens that negate the phrase right after them."""

NEGATION_WINDOW = 3
"""How many tokens before a match are searched for a negation cue."""

GAP_WORDS = 6
"""How many words `` ... `` in a pattern may skip."""

_MIN_STEM = 3
# Inflections only ("leaks", "leaked", "leaking" -> "leak"). Derivations such as "-ation" or
# "-ness" are left to the bank's `word*` prefixes: a deep cut would make a prefix like
# "definit*" miss "definition" (-> "defin"). Longest first inside each family. A suffix is only
# stripped when the rest keeps a vowel and at least _MIN_STEM characters ("thing" stays whole).
_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ingly", ""),
    ("edly", ""),
    ("ings", ""),
    ("ing", ""),
    ("ies", "i"),
    ("ied", "i"),
    ("ly", ""),
    ("ed", ""),
    ("es", ""),
    ("s", ""),
)
# "ly" needs a longer rest so that "apply" and "applied" meet at "appli".
_MIN_REST = {"ly": 4}
# After these suffixes a doubled final consonant is undone ("scanning" -> "scann" -> "scan").
_UNDOUBLE_AFTER = frozenset({"ing", "ings", "ed", "edly", "ingly"})
_IRREGULAR = {
    **dict.fromkeys(("use", "uses", "used", "using"), "us"),
    **dict.fromkeys(("does", "did", "doing", "done"), "do"),
    "data": "data",
    "datum": "data",
}
_BRITISH = re.compile(r"is(e|es|ed|ing|ation|ations|er|ers)$")
_CONTRACTIONS = (
    (re.compile(r"\bcan['’]?t\b"), "can not"),
    (re.compile(r"\bwon['’]?t\b"), "will not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"(\w)n['’]t\b"), r"\1 not"),
    (
        re.compile(
            r"\b(do|does|did|is|are|was|were|should|could|would|has|have|had|must|need)nt\b"
        ),
        r"\1 not",
    ),
)
_CLAUSE_BREAK = re.compile(r"[.;:!?,()\[\]\n]|\s[-–—]\s|\bbut\b")
_WORD = re.compile(r"[a-z0-9]+")
_VOWEL = re.compile(r"[aeiouy]")


def stem(word: str) -> str:
    """Reduce a lower-case token to a crude stem; the same input always gives the same stem.

    Not a linguistic stemmer: it only has to map the common forms of one word to one key
    ("store", "stores", "stored" -> "stor") and be applied to both sides.
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    if len(word) > 6:
        word = _BRITISH.sub(r"iz\1", word)
    for suffix, replacement in _SUFFIXES:
        if not word.endswith(suffix):
            continue
        if suffix == "s" and word.endswith(("ss", "us", "is")):
            break
        if suffix == "ed" and word.endswith("eed"):
            break
        base = word[: -len(suffix)]
        if len(base) < _MIN_REST.get(suffix, _MIN_STEM) or not _VOWEL.search(base):
            continue
        word = base + replacement
        if (
            suffix in _UNDOUBLE_AFTER
            and len(word) > 3
            and word[-1] == word[-2]
            and word[-1] not in "aeioulsz"
        ):
            word = word[:-1]
        break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"
    return word


@dataclass(frozen=True)
class Analyzed:
    """An answer after normalisation: one entry per token in each tuple."""

    raw: tuple[str, ...]
    """The lower-cased tokens as written (used for negation cues)."""
    stems: tuple[str, ...]
    """The stemmed tokens; `text` is these joined by single spaces."""
    clauses: tuple[int, ...]
    """Clause number of each token; negation does not reach across clauses."""
    starts: tuple[int, ...]
    """Offset of each token in `text`."""
    text: str
    """The string patterns are matched against."""

    def token_at(self, offset: int) -> int:
        """Index of the token that contains (or starts right after) character `offset`."""
        return max(0, bisect_right(self.starts, offset) - 1)

    def is_negated(self, offset: int) -> bool:
        """True when a negation cue precedes the token at `offset` in the same clause."""
        i = self.token_at(offset)
        for j in range(max(0, i - NEGATION_WINDOW), i):
            if self.clauses[j] == self.clauses[i] and self.raw[j] in NEGATION_CUES:
                return True
        return False


def normalise(text: str) -> str:
    """Lower-case `text`, fold Unicode look-alikes and expand negative contractions."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def analyze(text: str) -> Analyzed:
    """Normalise, tokenise and stem `text` (see the module docstring)."""
    raw: list[str] = []
    clauses: list[int] = []
    for clause_no, clause in enumerate(_CLAUSE_BREAK.split(normalise(text))):
        for token in _WORD.findall(clause):
            raw.append(token)
            clauses.append(clause_no)
    stems = [stem(t) for t in raw]
    starts: list[int] = []
    offset = 0
    for s in stems:
        starts.append(offset)
        offset += len(s) + 1
    return Analyzed(tuple(raw), tuple(stems), tuple(clauses), tuple(starts), " ".join(stems))


_PIECE = re.compile(
    r"(?P<gap>\s*\.\.\.\s*)"
    r"|(?P<span>\s+\.\{(?P<lo>\d*),(?P<hi>\d+)\}\s+)"
    r"|(?P<escape>\\.)"
    r"|(?P<cls>\[(?:\\.|[^\]])*\])"
    r"|(?P<quant>\{\d*(?:,\d*)?\})"
    r"|(?P<group>\(\?(?:[:=!]|<[=!]))"
    r"|(?P<word>[A-Za-z0-9]+)(?P<star>\*)?"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.S,
)


def translate_pattern(pattern: str) -> str:
    """Turn a bank pattern into a regular expression over stemmed text (see module docstring)."""
    out: list[str] = []
    for m in _PIECE.finditer(pattern.strip()):
        kind = m.lastgroup
        if kind == "gap":
            out.append(f" (?:[a-z0-9]+ ){{0,{GAP_WORDS}}}")
        elif kind == "span":
            # " .{0,40} " between two words must also allow the words to be adjacent.
            out.append(f" (?:.{{{m.group('lo') or 0},{m.group('hi')}}} )?")
        elif kind == "word" or kind == "star":
            out.append(stem(m.group("word").lower()))
            if m.group("star"):
                out.append("[a-z0-9]*")
        elif kind == "space":
            out.append(" ")
        else:
            out.append(m.group(0))
    return r"(?<![a-z0-9])(?:" + "".join(out) + r")(?![a-z0-9])"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a bank pattern; raises `re.error` when it is not a valid expression."""
    if not pattern.strip():
        raise re.error("empty pattern")
    return re.compile(translate_pattern(pattern))


def first_match(
    matchers: tuple[re.Pattern[str], ...], answer: Analyzed, *, negation_sensitive: bool = True
) -> re.Match[str] | None:
    """Return the first match of any matcher in `answer` that counts, or None.

    With `negation_sensitive`, matches preceded by a negation cue are skipped.
    """
    for matcher in matchers:
        for m in matcher.finditer(answer.text):
            if not negation_sensitive or not answer.is_negated(m.start()):
                return m
    return None
