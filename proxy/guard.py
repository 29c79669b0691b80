"""The semantic cache's lexical guard: two questions that embed alike may still differ in a
number, a negation, a quoted or code token, a content word, or the direction of a relation."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "once": "1", "twice": "2",
}  # fmt: skip
NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nor", "without", "cannot", "neither", "nothing", "nobody",
     "nowhere", "except", "excluding", "unless", "avoid", "dont", "doesnt", "didnt", "isnt",
     "arent", "wasnt", "werent", "wont", "wouldnt", "cant", "couldnt", "shouldnt", "hasnt",
     "havent", "hadnt", "mustnt", "non"}
)  # fmt: skip
# Words that carry the phrasing of a question, not its subject: paraphrases differ in these.
FILLER = frozenset(
    """
    a an the is are was were be been being am do does did doing done have has had having i me my
    mine we us our you your yours it its this that these those there here what which who whom
    whose when where why how whats hows wheres whos can could would should shall will may might
    must please pls kindly tell show explain give let know want need like help way ways method
    methods simply just really actually exactly possible possibly some any anything something
    thing things about regarding for of in on at by with as and or but so if then than also too
    very much many one ones get getting got go going make making use using used work works
    working mean means meaning question answer example examples sure okay ok hi hello hey thanks
    thank able wondering curious anyone someone somebody does idiomatic idiomatically
    recommended approach whether command commands find all every each keyword from to
    """.split()  # noqa: SIM905
)
# Relation words whose two sides cannot be swapped: "Celsius to Fahrenheit" is not "Fahrenheit
# to Celsius", "A depends on B" is not "B depends on A". Checked only when both texts use the word.
RELATIONS = frozenset({"to", "into", "than", "vs", "versus", "on", "of", "from", "with", "by"})
SYNONYMS = {"dict": "dictionary", "int": "integer", "golang": "go", "remove": "delete",
            "erase": "delete", "biggest": "largest", "smallest": "min",
            "minimum": "min", "maximum": "max", "create": "make", "program": "code",
            "directory": "folder", "dir": "folder", "pic": "image", "picture": "image",
            "photo": "image", "js": "javascript", "py": "python", "ts": "typescript",
            "string": "string", "str": "string", "init": "initialize", "initialise": "initialize",
            "colour": "color", "behaviour": "behavior", "optimise": "optimize"}  # fmt: skip

_QUOTED = re.compile(r"\"([^\"]+)\"|`([^`]+)`|'([^'\s][^']*[^'\s])'|“([^”]+)”")
_CODE = re.compile(
    r"[A-Za-z_][\w]*\(\)?|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|\w*_\w+|[a-z]+[A-Z]\w*|(?<![\w-])--?[a-z][\w-]*"
    r"|[\w./-]+\.(?:py|js|ts|go|rs|java|json|yaml|yml|toml|md|txt|csv|sh|c|h|cpp|html|css)\b"
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def normalise(text: str) -> str:
    """What the embedder sees: Unicode-normalised, lower case, single spaces, no trailing
    punctuation; embeddings of static word models change with case."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip("?!.。？！ ").strip()


def _stem(word: str) -> str:
    """A light suffix stripper, enough to equate plurals and tenses: "tuples" ~ "tuple",
    "dictionaries" ~ "dictionary", "ended" ~ "end", "sorting" ~ "sort"."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _canonical(word: str) -> str:
    return SYNONYMS.get(word) or _stem(SYNONYMS.get(_stem(word), word))


@dataclass(frozen=True)
class Signature:
    """The parts of a question the guard compares."""

    numbers: tuple[str, ...]
    negations: int
    literals: frozenset[str]
    content: frozenset[str]
    relations: frozenset[tuple[str, str, str]]  # (word, before, after) around "to", "than", ...
    order: dict[str, int]  # first position of each content word


def signature(text: str) -> Signature:
    literals = {next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)}
    literals |= {m.group(0).rstrip("()") for m in _CODE.finditer(text)} - {""}
    lowered = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    tokens = [t.replace("'", "") for t in _WORD.findall(lowered)]
    words = [NUMBER_WORDS.get(t, t) for t in tokens]
    numbers = sorted(m.group(0).replace(",", "") for m in _NUMBER.finditer(" ".join(words)))
    negations = sum(1 for w in words if w in NEGATIONS or (w.endswith("nt") and w[:-2] in _AUX))
    content_words = [
        _canonical(w)
        for w in words
        if w not in FILLER and w not in NEGATIONS and w not in RELATIONS and not w.isdigit()
    ]
    relations = set()
    for index, word in enumerate(words):
        if word in RELATIONS:
            before = _nearest(words, index, -1)
            after = _nearest(words, index, 1)
            if before and after and before != after:
                relations.add((word, before, after))
    order: dict[str, int] = {}
    for position, word in enumerate(content_words):
        order.setdefault(word, position)
    return Signature(
        tuple(numbers),
        negations,
        frozenset(w for w in literals if len(w) > 1),
        frozenset(content_words),
        frozenset(relations),
        order,
    )


def _swapped(left: Signature, right: Signature) -> bool:
    """A relation of one text ("x to y") whose sides come in the other order in the other text,
    when that text uses the same relation word."""
    words = {word for word, _, _ in right.relations}
    order = right.order
    return any(
        word in words and first in order and second in order and order[first] > order[second]
        for word, first, second in left.relations
    )


_AUX = frozenset({"do", "does", "did", "is", "are", "was", "were", "wo", "ca", "could", "should"})


def _nearest(words: list[str], index: int, step: int) -> str | None:
    position = index + step
    while 0 <= position < len(words):
        word = words[position]
        if word not in FILLER and word not in RELATIONS and word not in NEGATIONS:
            return _canonical(word)
        position += step
    return None


def differences(a: str, b: str) -> list[str]:
    """Why two questions must not share an answer; empty when the guard lets them."""
    left, right = signature(a), signature(b)
    found = []
    if Counter(left.numbers) != Counter(right.numbers):
        found.append("numbers differ")
    if left.negations != right.negations:
        found.append("negation differs")
    if left.literals != right.literals:
        found.append("quoted or code tokens differ")
    if left.content != right.content:
        found.append("content words differ: " + ", ".join(sorted(left.content ^ right.content)))
    elif _swapped(left, right) or _swapped(right, left):
        found.append("word order changes a relation")
    return found


def allows(a: str, b: str) -> bool:
    return not differences(a, b)
