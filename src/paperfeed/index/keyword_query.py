"""The search query language: parsed once into a typed query that each backend compiles.

Syntax (field prefixes are case-insensitive; only these four are syntax, so ``BERT:`` or
``xx:foo`` stay plain text; words and phrases without a prefix search title, abstract and
authors, never the category codes)::

    diffusion models        plain words: any of them may match; BM25 ranks papers
                            containing more (and rarer) words first
    "exact phrase"          a phrase that must occur (a quoted single word must occur)
    ti:word  ti:"a phrase"  must occur in the title; abs: the abstract; au: the authors
    cat:cs.CL  cat:cs.*     the paper is in category cs.CL / in any cs category
    -word  -"phrase"  -au:name  -cat:cs.CV  NOT word
                            papers matching this are left out (a minus before a digit
                            or a space, as in -40, is text)
    a OR b                  one of the two must match (plain words are OR-ed anyway)
    a AND b                 both must match

Required parts (phrases, field terms, categories, AND) must all match; when plain words are
given too, at least one of them must match as well. A query made only of exclusions has
nothing to rank and raises :class:`QuerySyntaxError`, as do a field prefix with nothing
after it and ``OR`` next to an exclusion. An unbalanced quote runs to the end of the query
(the way most search boxes read it); a dangling ``OR`` / ``AND`` / ``NOT`` is a plain word.

Long text (more than :data:`LITERAL_WORDS` words or :data:`LITERAL_TOKENS` tokens: a pasted
abstract) is read as plain words without syntax, since quotes and hyphens in prose are not
meant as operators. The plain words searched are the first :data:`MAX_WORDS` distinct
ones, with English stopwords left out (unless the query has nothing else), so any query
compiles to a bounded expression.

Terms hold letters and digits only and backends build their queries from them as values
(SQLite: tantivy query objects, store/sqlite/keyword_index.py; PostgreSQL: tsquery
lexemes, store/postgres/keyword.py), so no search-engine syntax in user text (``NEAR``,
``col:``, ``^``, ``*``, parentheses) is ever interpreted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from paperfeed.errors import PaperfeedError

# Above these sizes the query is read as plain text ("paste an abstract"): nobody types 33
# words of operators, while prose often contains quotes and hyphens that are not operators.
LITERAL_WORDS = 32
LITERAL_TOKENS = 64
# At most this many distinct plain words go into the OR-ed part of a query.
MAX_WORDS = 64
# Text beyond this is ignored: only its first MAX_WORDS distinct words are used anyway.
MAX_QUERY_CHARS = 20_000
# The encoder reads at most 256 word pieces (about 1,000-1,500 characters); some margin.
MAX_SEMANTIC_CHARS = 4_000

# Lucene's default English stop set, the analyzer behind the published BM25 baselines.
# On SciFact dropping them changes nDCG@10 by -0.001 (noise) but it keeps posting lists
# as long as the corpus ("the", "of") out of OR queries, which matters at 1M papers.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)

# A run of letters and digits: unicode61's token characters (categories L* and N*).
_TOKEN = re.compile(r"[^\W_]+")
_PREFIX = re.compile(r"(ti|abs|au|cat):", re.IGNORECASE)
_OPERATORS = frozenset({"OR", "AND", "NOT"})
_SPACE = re.compile(r"\s*")
_BARE = re.compile(r'[^\s"]*')  # a word ends at white space or at a quote


class QuerySyntaxError(PaperfeedError):
    """A search query that cannot be read; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


class Field(StrEnum):
    """Where a term must occur. ANY is title, abstract and authors (not category codes)."""

    ANY = "any"
    TITLE = "title"
    ABSTRACT = "abstract"
    AUTHORS = "authors"
    CATEGORIES = "categories"


_PREFIX_FIELDS = {
    "ti": Field.TITLE,
    "abs": Field.ABSTRACT,
    "au": Field.AUTHORS,
    "cat": Field.CATEGORIES,
}


@dataclass(frozen=True, slots=True)
class Term:
    """One thing to look for: a word or phrase (several tokens, in order) in one field.

    ``text`` is the value as written (without prefix, minus sign or quotes). ``prefix``
    marks a trailing ``*`` on a category: the last token is a prefix (``cat:cs.C*``), or,
    when the pattern ends with a separator (``cat:cs.*``), any category continuing it.
    """

    field: Field
    tokens: tuple[str, ...]
    text: str
    quoted: bool = False
    prefix: bool = False

    @property
    def is_phrase(self) -> bool:
        return len(self.tokens) > 1


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    """A parsed query; each store backend compiles it to its own search engine.

    A paper matches when it contains at least one of ``words`` (if any), at least one
    alternative of every group in ``required``, and none of ``excluded``.
    """

    text: str
    words: tuple[str, ...] = ()
    required: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()
    semantic_text: str = ""
    literal: bool = False
    truncated: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.words and not self.required

    @property
    def phrases(self) -> tuple[Term, ...]:
        """Required phrases and quoted words searched in title, abstract and authors."""
        return tuple(g[0] for g in self.required if len(g) == 1 and g[0].field is Field.ANY)

    @property
    def field_terms(self) -> tuple[Term, ...]:
        """Required terms restricted to title, abstract or authors (``ti:``, ``abs:``, ``au:``)."""
        return tuple(
            g[0]
            for g in self.required
            if len(g) == 1 and g[0].field not in (Field.ANY, Field.CATEGORIES)
        )

    @property
    def categories(self) -> tuple[tuple[Term, ...], ...]:
        """Required category groups (each: one of these categories), e.g. for exact filters."""
        return tuple(g for g in self.required if all(t.field is Field.CATEGORIES for t in g))

    @property
    def highlight_terms(self) -> tuple[str, ...]:
        """Lower-case tokens worth marking in snippets: searched words, never exclusions."""
        tokens = list(self.words)
        for group in self.required:
            tokens += (tok for t in group if t.field is not Field.CATEGORIES for tok in t.tokens)
        folded = _dedupe(t.casefold() for t in tokens)
        content = [t for t in folded if t not in STOPWORDS]
        return tuple(content or folded)


def parse_query(text: str, *, syntax: bool = True) -> KeywordQuery:
    """Parse a search box entry; ``syntax=False`` reads it all as plain words.

    Raises :class:`QuerySyntaxError` for a query that cannot mean anything (see the
    module docstring); never anything else.
    """
    text = text[:MAX_QUERY_CHARS]
    if not syntax or _is_long(text):
        return _literal_query(text)
    items = _resolve_not(_lex(text))
    groups = _group(items)
    return _assemble(text, groups)


def tokenize(text: str) -> tuple[str, ...]:
    """Split text into tokens: runs of letters and digits (as the backends' analyzers do)."""
    return tuple(_TOKEN.findall(unicodedata.normalize("NFC", text)))


# --- lexing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Atom:
    term: Term
    position: int
    negated: bool = False


@dataclass(frozen=True, slots=True)
class _Operator:
    name: str
    position: int


_Item = _Atom | _Operator


@dataclass(slots=True)
class _Group:
    """Alternatives joined by OR; required when AND-ed or when not all are plain words.

    OR next to an exclusion is refused, so an excluded group holds exactly one term.
    """

    atoms: list[_Atom]
    required: bool = False

    @property
    def negated(self) -> bool:
        return self.atoms[0].negated


def _is_plain(term: Term) -> bool:
    return term.field is Field.ANY and not term.quoted


def _lex(text: str) -> list[_Item]:
    items: list[_Item] = []
    end = len(text)
    pos = _skip(_SPACE, text, 0)
    while pos < end:
        start = pos
        negated = False
        if text[pos] == "-" and pos + 1 < end and (text[pos + 1].isalpha() or text[pos + 1] == '"'):
            negated = True
            pos += 1
        field = Field.ANY
        prefix = _PREFIX.match(text, pos)
        if prefix:
            field = _PREFIX_FIELDS[prefix.group(1).lower()]
            pos = prefix.end()
        value, quoted, pos = _read_value(text, pos)
        if prefix:
            tokens = tokenize(value)
            if not tokens:
                raise _empty_field(text[start:pos], prefix.group(0), field, start)
            is_prefix = field is Field.CATEGORIES and value.endswith("*")
            items.append(_Atom(Term(field, tokens, value, quoted, is_prefix), start, negated))
        elif not negated and not quoted and value in _OPERATORS:
            items.append(_Operator(value, start))
        else:
            tokens = tokenize(value)
            if tokens:  # punctuation alone means nothing
                items.append(_Atom(Term(field, tokens, value, quoted), start, negated))
        pos = _skip(_SPACE, text, pos)
    return items


def _read_value(text: str, pos: int) -> tuple[str, bool, int]:
    """Read a quoted phrase (an unclosed one runs to the end) or a bare word."""
    if pos < len(text) and text[pos] == '"':
        close = text.find('"', pos + 1)
        if close < 0:
            return text[pos + 1 :], True, len(text)
        return text[pos + 1 : close], True, close + 1
    stop = _skip(_BARE, text, pos)
    return text[pos:stop], False, stop


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    match = pattern.match(text, pos)  # the patterns match the empty string: never None
    return match.end() if match else pos


def _empty_field(written: str, prefix: str, field: Field, start: int) -> QuerySyntaxError:
    name = prefix.lstrip("-").lower()
    if field is Field.CATEGORIES:
        example = "cat:cs.CL or cat:cs.*"
    else:
        example = f'{name}word or {name}"a phrase"'
    return QuerySyntaxError(
        f"nothing to look for in {written!r} at character {start + 1}: "
        f"write {example}, with no space after the colon",
        start,
    )


# --- grouping -----------------------------------------------------------------------------


def _resolve_not(items: list[_Item]) -> list[_Item]:
    """``NOT x`` is ``-x``; a NOT with nothing after it is the plain word."""
    out: list[_Item] = []
    i = 0
    while i < len(items):
        item = items[i]
        nxt = items[i + 1] if i + 1 < len(items) else None
        if isinstance(item, _Operator) and item.name == "NOT":
            if isinstance(nxt, _Atom):
                out.append(_Atom(nxt.term, item.position, negated=True))
                i += 2
                continue
            out.append(_operator_as_word(item))
        else:
            out.append(item)
        i += 1
    return out


def _operator_as_word(op: _Operator) -> _Atom:
    return _Atom(Term(Field.ANY, (op.name,), op.name), op.position)


def _group(items: list[_Item]) -> list[_Group]:
    """Join ``a OR b`` into one group (OR binds tighter), then mark ``a AND b`` required."""
    groups: list[_Group] = []
    pending_and = False
    i = 0
    while i < len(items):
        item = items[i]
        nxt = items[i + 1] if i + 1 < len(items) else None
        if isinstance(item, _Operator):
            if groups and isinstance(nxt, _Atom):
                if item.name == "AND":
                    groups[-1].required = pending_and = True
                    i += 1
                    continue
                if groups[-1].negated or nxt.negated:
                    raise QuerySyntaxError(
                        f"OR at character {item.position + 1} joins an exclusion: "
                        "write -a -b to leave out both, or a OR b to accept either",
                        item.position,
                    )
                groups[-1].atoms.append(nxt)
                i += 2
                continue
            item = _operator_as_word(item)
        groups.append(_Group([item], required=pending_and))
        pending_and = False
        i += 1
    for g in groups:
        # An alternative that is more than a plain word ("a" OR ti:b) makes the group a
        # condition rather than ranking words.
        if not all(_is_plain(a.term) for a in g.atoms):
            g.required = True
    return groups


# --- assembling ---------------------------------------------------------------------------


def _assemble(text: str, groups: list[_Group]) -> KeywordQuery:
    plain: list[str] = []
    required: list[tuple[Term, ...]] = []
    excluded: list[Term] = []
    semantic: list[str] = []
    for g in groups:
        if g.negated:
            excluded.append(g.atoms[0].term)
            continue
        if g.required:
            required.append(tuple(_dedupe_terms(a.term for a in g.atoms)))
        else:
            plain += (tok for a in g.atoms for tok in a.term.tokens)
        semantic += (
            a.term.text for a in g.atoms if a.term.field in (Field.ANY, Field.TITLE, Field.ABSTRACT)
        )
    if not plain and not required and excluded:
        raise QuerySyntaxError(
            "a query needs at least one term to look for besides exclusions (-word): "
            "add a word, a phrase or a filter such as cat:cs.CL",
            0,
        )
    words, truncated = _select_words(plain, keep_stopwords=not required)
    return KeywordQuery(
        text=text,
        words=words,
        required=tuple(required),
        excluded=tuple(_dedupe_terms(excluded)),
        semantic_text=_clip(" ".join(semantic)),
        truncated=truncated,
    )


def _literal_query(text: str) -> KeywordQuery:
    words, truncated = _select_words(list(tokenize(text)), keep_stopwords=True)
    return KeywordQuery(
        text=text,
        words=words,
        semantic_text=_clip(" ".join(text.split())),
        literal=True,
        truncated=truncated,
    )


def _select_words(tokens: list[str], *, keep_stopwords: bool) -> tuple[tuple[str, ...], bool]:
    """The first MAX_WORDS distinct tokens, stopwords left out unless nothing else remains."""
    distinct: dict[str, str] = {}
    for token in tokens:
        distinct.setdefault(_fold(token), token)
    content = [t for key, t in distinct.items() if key not in STOPWORDS]
    chosen = content if content or not keep_stopwords else list(distinct.values())
    return tuple(chosen[:MAX_WORDS]), len(chosen) > MAX_WORDS


def _is_long(text: str) -> bool:
    words = text.split()
    if len(words) > LITERAL_WORDS:
        return True
    # Stop counting early: the text may be a whole pasted paper.
    return any(n >= LITERAL_TOKENS for n, _ in enumerate(_TOKEN.finditer(text)))


def _fold(token: str) -> str:
    """Case and diacritics folded, as remove_diacritics 2 does: "Müller" == "muller"."""
    if token.isascii():
        return token.lower()
    decomposed = unicodedata.normalize("NFKD", token.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _dedupe_terms(terms: Iterable[Term]) -> list[Term]:
    seen: dict[tuple[Field, tuple[str, ...], bool], Term] = {}
    for t in terms:
        seen.setdefault((t.field, tuple(_fold(x) for x in t.tokens), t.prefix), t)
    return list(seen.values())


def _clip(text: str) -> str:
    if len(text) <= MAX_SEMANTIC_CHARS:
        return text
    cut = text[:MAX_SEMANTIC_CHARS]
    space = cut.rfind(" ")
    return cut[:space] if space > 0 else cut
