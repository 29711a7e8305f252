"""Text analysis of free-text answers: tokens, stems, sentences, clauses and negation.

An answer is normalised to a sequence of tokens: Unicode look-alikes folded, contractions
expanded ("doesn't" -> "does not"), then each word lower-cased, British -ise spellings folded
into -ize, and inflections stripped ("leaks", "leaked", "leaking" -> "leak"). Patterns in the
bank go through the same stemmer, so an author writes plain words and every simple word form
matches; derived forms ("leakage") are reached with a prefix (``leak*``).

Each token knows its sentence and its clause. Clauses end at punctuation (``, ; : ( ) -``), at
contrast and subordinating words (``but``, ``while``, ``whereas``, ``because``, ``if``,
``then``...), before relative words (``which``, ``where``, ``when``) and at ``and``/``or`` when
a new subject or a negation follows ("..., and the online store ...", "... and nothing after
it"). A clause opened by a contrast marker (``instead of``, ``rather than``, ``as opposed to``,
``unlike``) counts as negated: "fall back to a default instead of serving stale values" does
not say "serve stale".

Pattern syntax (a regular expression over the stemmed, space-joined tokens):

- plain words are stemmed: ``materialized view`` matches "Materialises views";
- ``word*`` matches any token that starts with the stem of ``word``;
- `` ... `` (surrounded by spaces) allows up to six words in between;
- `` .{0,40} `` (surrounded by spaces) allows up to 40 characters of whole words in between;
- ``{name}`` is the bank's term ``name`` (a list of patterns; see `expand_terms`);
- anything else is ordinary ``re`` syntax (``(a|b)``, ``.{0,40}``, ``\\d+``).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

NEGATION_CUES = frozenset(
    {"not", "no", "never", "without", "nor", "neither", "none", "nothing", "hardly", "cannot"}
)
"""Raw tokens that negate the clause they stand in."""

# "not only X but also Y" and "no matter" negate nothing.
_NOT_NEGATING_AFTER = {"not": frozenset({"only", "just", "merely"}), "no": frozenset({"matter"})}

FUNCTION_WORDS = frozenset(
    """a an the this that these those it its they them their there here which who whom whose
    what when where why how is are was were be been being am do does did done has have had
    having can could will would shall should may might must need needs to of in on at by for
    from with without into onto over under about after before between during through until
    up down out off than then so because since if unless while whereas although though but
    and or nor not no never only also just even still yet both either neither each every all
    any some many much more most less least few other another such same own very too as
    like i we you he she me us my our your his her one nothing none instead rather get gets
    got make makes keeps keep gives give takes take uses use used""".split()
)
"""Words that carry grammar rather than topic: prose has many, a keyword list has none."""

NOMINAL_NEGATIONS = frozenset({"no", "none", "nothing", "without"})
"""Cues that negate the words right after them rather than the whole clause."""

NOMINAL_REACH = 4
"""How many tokens before the stating words a nominal negation still bears on them."""

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


@cache
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


_ABBREVIATIONS = (
    (re.compile(r"\be\.g\.", re.I), "for example"),
    (re.compile(r"\bi\.e\.", re.I), "that is"),
)
_CONTRACTIONS = (
    (re.compile(r"\bcan['’]?t\b", re.I), "can not"),
    (re.compile(r"\bwon['’]?t\b", re.I), "will not"),
    (re.compile(r"\bcannot\b", re.I), "can not"),
    (re.compile(r"(\w)n['’]t\b", re.I), r"\1 not"),
    (
        re.compile(
            r"\b(do|does|did|is|are|was|were|should|could|would|has|have|had|must|need)nt\b",
            re.I,
        ),
        r"\1 not",
    ),
)
_SUBJECT_START = r"(?:the|it|they|a|an|this|that|these|then|its|their|each|every|later|so)\b"
_NEGATION_START = r"(?:not|no|never|nothing|none|without)\b"
_BREAK = re.compile(
    r"(?P<sentence>[.!?]+(?=\s|$)|\n\s*\n)"
    r"|(?P<contrast>\b(?:instead\s+of|rather\s+than|as\s+opposed\s+to|unlike)\b)"
    rf"|(?P<hard>;|\b(?:and|or)\s+(?={_SUBJECT_START}|{_NEGATION_START})"
    r"|(?=\b(?:but|while|whereas|although|though|however|because|since|unless|if|so|then"
    r"|thus|hence|otherwise)\b))"
    r"|(?P<soft>[:,()\[\]\n]|\s[-–—]\s|(?=\b(?:where|wherever|when|whenever|which|who|whose)\b))",
    re.I,
)
"""Where sentences and clauses end. A *soft* break (comma, colon, brackets, a relative word)
keeps the sentence's subject in force ("The online store, Redis for example, keeps ..."); a
*hard* one (semicolon, "and the ...", "because", "then") starts a clause with its own."""
_WORD = re.compile(r"[A-Za-z0-9]+")
_VOWEL = re.compile(r"[aeiouy]")


@dataclass(frozen=True)
class Analyzed:
    """An answer after normalisation: one entry per token in each per-token tuple."""

    source: str
    """The normalised answer (case kept); `spans` index into it, quotes are cut from it."""
    raw: tuple[str, ...]
    """The lower-cased tokens as written (used for negation cues and function words)."""
    stems: tuple[str, ...]
    """The stemmed tokens; `text` is these joined by single spaces."""
    spans: tuple[tuple[int, int], ...]
    """Start and end offset of each token in `source`."""
    clauses: tuple[int, ...]
    """Clause number of each token (increasing through the answer)."""
    sentences: tuple[int, ...]
    """Sentence number of each token."""
    contrast: frozenset[int]
    """Clauses opened by a contrast marker ("instead of ..."): they count as negated."""
    hard: frozenset[int]
    """Clauses opened by a sentence start, a contrast or a hard break: the subject of an
    earlier clause does not carry into them."""
    text: str
    """The string patterns are matched against: the stems joined by spaces, sentences by
    newlines, so that no pattern (whose `.` does not match a newline) runs across them."""
    starts: tuple[int, ...]
    """Offset of each token in `text`."""

    def token_at(self, offset: int) -> int:
        """Index of the token that contains (or starts right after) character `offset`."""
        return max(0, bisect_right(self.starts, offset) - 1)

    def token_span(self, m: re.Match[str]) -> tuple[int, int]:
        """First and last token index covered by a match on `text`."""
        return self.token_at(m.start()), self.token_at(max(m.start(), m.end() - 1))

    def negations(self, first: int, last: int, skip: set[int]) -> int:
        """How many negations bear on the words from token `first` to token `last`.

        A verbal negation (``not``, ``never``...) anywhere in the clauses those words run
        through counts ("future data is never used"); a nominal one (``no``, ``nothing``,
        ``none``, ``without``) only when it stands among the words or at most
        `NOMINAL_REACH` tokens before them ("nothing crashes", but not the "no" of "has no end
        time yet and begins at now minus the TTL"). A clause opened by a contrast marker adds
        one. Cues in `skip` (the matched words themselves: a pattern such as "no single
        database" already says it) do not count.
        """
        clauses = range(self.clauses[first], self.clauses[last] + 1)
        count = sum(1 for c in clauses if c in self.contrast)
        lo, hi = self.clause_bounds(clauses[0])[0], self.clause_bounds(clauses[-1])[1]
        for i in range(lo, hi + 1):
            token = self.raw[i]
            if i in skip or token not in NEGATION_CUES:
                continue
            nxt = self.raw[i + 1] if i + 1 < len(self.raw) else ""
            if nxt in _NOT_NEGATING_AFTER.get(token, frozenset()):
                continue
            if token in NOMINAL_NEGATIONS and not first - NOMINAL_REACH <= i <= last:
                continue
            count += 1
        return count

    def quote(self, first: int, last: int) -> str:
        """The answer's own words from token `first` to token `last`, inclusive."""
        return self.source[self.spans[first][0] : self.spans[last][1]]

    def clause_bounds(self, clause: int) -> tuple[int, int]:
        """First and last token index of `clause` (clause numbers never decrease)."""
        return bisect_left(self.clauses, clause), bisect_right(self.clauses, clause) - 1

    def sentence_text(self, sentence: int) -> str:
        """Sentence number `sentence` as written, with its closing punctuation."""
        idx = [i for i, s in enumerate(self.sentences) if s == sentence]
        if not idx:
            return ""
        start, end = self.spans[idx[0]][0], self.spans[idx[-1]][1]
        m = re.compile(r"[^.!?\n]*[.!?]?").match(self.source, end)
        return self.source[start : m.end() if m else end].strip()

    def with_stems(self, stems: tuple[str, ...]) -> Analyzed:
        """The same answer with other stems (same count), e.g. antonyms swapped in."""
        return _build(
            self.source,
            self.raw,
            stems,
            self.spans,
            self.clauses,
            self.sentences,
            self.contrast,
            self.hard,
        )


def normalise(text: str) -> str:
    """Fold Unicode look-alikes, expand abbreviations and negative contractions (case kept)."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'")
    for pattern, replacement in (*_ABBREVIATIONS, *_CONTRACTIONS):
        text = pattern.sub(replacement, text)
    return text


def _build(
    source: str,
    raw: tuple[str, ...],
    stems: tuple[str, ...],
    spans: tuple[tuple[int, int], ...],
    clauses: tuple[int, ...],
    sentences: tuple[int, ...],
    contrast: frozenset[int],
    hard: frozenset[int],
) -> Analyzed:
    starts: list[int] = []
    offset = 0
    for s in stems:
        starts.append(offset)
        offset += len(s) + 1
    return Analyzed(
        source,
        raw,
        stems,
        spans,
        clauses,
        sentences,
        contrast,
        hard,
        "".join(
            (("\n" if sentences[i] != sentences[i - 1] else " ") if i else "") + stem_
            for i, stem_ in enumerate(stems)
        ),
        tuple(starts),
    )


def analyze(text: str) -> Analyzed:
    """Normalise, tokenise, stem and split `text` into sentences and clauses."""
    source = normalise(text)
    raw: list[str] = []
    spans: list[tuple[int, int]] = []
    clauses: list[int] = []
    sentences: list[int] = []
    contrast: set[int] = set()
    hard: set[int] = {0}
    clause = sentence = 0
    pos = 0
    breaks = [*_BREAK.finditer(source), None]
    for brk in breaks:
        end = brk.start() if brk else len(source)
        for m in _WORD.finditer(source, pos, end):
            raw.append(m.group(0).lower())
            spans.append((m.start(), m.end()))
            clauses.append(clause)
            sentences.append(sentence)
        if brk is None:
            break
        pos = brk.end()
        clause += 1
        if brk.lastgroup == "sentence":
            sentence += 1
        elif brk.lastgroup == "contrast":
            contrast.add(clause)
        if brk.lastgroup != "soft":
            hard.add(clause)
    stems = tuple(stem(t) for t in raw)
    return _build(
        source,
        tuple(raw),
        stems,
        tuple(spans),
        tuple(clauses),
        tuple(sentences),
        frozenset(contrast),
        frozenset(hard),
    )


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


_TERM = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def expand_terms(pattern: str, terms: Mapping[str, tuple[str, ...]], _depth: int = 0) -> str:
    """Replace each ``{name}`` in `pattern` by ``(?:alt1|alt2|...)`` of the term's patterns.

    Terms may use other terms (up to four levels). Raises `re.error` for an unknown term.
    """
    if _depth > 4:
        raise re.error("terms nest too deep (a term that uses itself?)")

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in terms:
            raise re.error(f"unknown term {{{name}}}")
        alts = "|".join(expand_terms(p, terms, _depth + 1) for p in terms[name])
        return f"(?:{alts})"

    return _TERM.sub(repl, pattern)


def compile_pattern(
    pattern: str, terms: Mapping[str, tuple[str, ...]] | None = None
) -> re.Pattern[str]:
    """Compile a bank pattern; raises `re.error` when it is not a valid expression."""
    if not pattern.strip():
        raise re.error("empty pattern")
    return re.compile(translate_pattern(expand_terms(pattern, terms or {})))
