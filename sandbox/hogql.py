"""HogQL, the part the sandbox's query API understands, translated to SQLite.

The sandbox answers ``POST /api/projects/<id>/query/`` by evaluating the query over the events it
kept, so a query the job sends is really run, and one it does not understand fails as PostHog
fails a query it cannot resolve (a 400 naming what is wrong) instead of getting a canned answer.

Understood: ``SELECT <expr> [AS alias], ... FROM events | persons | person_distinct_ids
[WHERE <expr>] [GROUP BY <expr>, ...] [ORDER BY <expr> [ASC|DESC], ...] [LIMIT n]`` with
comparisons, ``AND``/``OR``/``NOT``, ``IN (...)``, string and number literals and the functions
in ``_FUNCTIONS``. Fields follow PostHog's HogQL schema: ``properties.<key>`` reads a JSON
property and ``person.<field>`` on ``person_distinct_ids`` joins the person
(https://github.com/PostHog/posthog/blob/master/posthog/hogql/database/schema/person_distinct_ids.py,
https://github.com/PostHog/posthog/blob/master/posthog/hogql/database/schema/events.py).
Timestamps are stored as UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``, so only the ``UTC`` time zone
is accepted where HogQL takes one.

As PostHog does, the row limit comes from the parsed query: one without ``LIMIT`` returns at most
100 rows and none returns more than 50,000
(https://github.com/PostHog/posthog/blob/master/posthog/hogql/constants.py,
``DEFAULT_RETURNED_ROWS``, ``MAX_SELECT_RETURNED_ROWS``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["DEFAULT_RETURNED_ROWS", "MAX_SELECT_RETURNED_ROWS", "HogQLError", "SQLiteQuery",
           "to_sqlite"]

DEFAULT_RETURNED_ROWS, MAX_SELECT_RETURNED_ROWS = 100, 50_000


class HogQLError(ValueError):
    """The query cannot be evaluated; the message says why, as PostHog's 400 answer does."""


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*)
  | (?P<op><=|>=|!=|<>|==|[=<>(),*])
""", re.VERBOSE)
_KEYWORDS = {"select", "from", "where", "group", "by", "order", "limit", "as", "and", "or",
             "not", "in", "asc", "desc", "distinct"}

# HogQL name -> (least and most arguments, SQLite rendering of the rendered arguments).
_FUNCTIONS = {
    "count": (0, 1, lambda a: f"count({a[0] if a else '*'})"),
    "uniqExact": (1, 1, lambda a: f"count(DISTINCT {a[0]})"),
    "min": (1, 1, lambda a: f"min({a[0]})"),
    "max": (1, 1, lambda a: f"max({a[0]})"),
    "toDate": (1, 1, lambda a: f"date({a[0]})"),
    "toDateTime": (1, 2, lambda a: f"strftime('%Y-%m-%d %H:%M:%f', {a[0]})"),
    "toTimeZone": (2, 2, lambda a: a[0]),
    "lower": (1, 1, lambda a: f"lower({a[0]})"),
}
_TABLES = {
    "events": ("events", {"uuid", "event", "distinct_id", "timestamp", "properties"}),
    "persons": ("persons", {"id", "properties", "is_identified", "created_at"}),
    "person_distinct_ids": ("person_distinct_ids", {"distinct_id", "person_id"}),
}
_JOIN_PERSON = " JOIN persons AS person ON person.id = person_distinct_ids.person_id"


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise HogQLError(f"Syntax error at position {position}: {text[position:position + 20]!r}")
        position = match.end()
        kind = match.lastgroup
        if kind == "space":
            continue
        value = match.group()
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append((kind, value))
    return tokens


def _json_path(key: str) -> str:
    return "'$.\"" + key.replace("'", "''").replace('"', '\\"') + "\"'"


class _Translator:
    def __init__(self, text: str):
        self._tokens = _tokens(text)
        self._at = 0
        self.table = ""
        self.joins_person = False
        self.aliases: set[str] = set()

    # -- token helpers ---------------------------------------------------------------------------

    def _peek(self, offset: int = 0) -> tuple[str, str]:
        index = self._at + offset
        return self._tokens[index] if index < len(self._tokens) else ("end", "")

    def _take(self, kind: str | None = None, value: str | None = None) -> str:
        token = self._peek()
        if (kind and token[0] != kind) or (value and token[1] != value):
            raise HogQLError(f"Syntax error: expected {value or kind}, got {token[1] or 'the end'}")
        self._at += 1
        return token[1]

    def _is(self, value: str) -> bool:
        return self._peek()[1] == value and self._peek()[0] in ("keyword", "op")

    # -- the query -------------------------------------------------------------------------------

    def query(self) -> str:
        self._take("keyword", "select")
        # FROM decides how fields resolve, so read it before the select list.
        depth, index = 0, self._at
        while index < len(self._tokens):
            kind, value = self._tokens[index]
            depth += (value == "(") - (value == ")") if kind == "op" else 0
            if kind == "keyword" and value == "from" and depth == 0:
                break
            index += 1
        if index >= len(self._tokens) - 1 or self._tokens[index + 1][0] != "name":
            raise HogQLError("Syntax error: a query needs FROM <table>")
        name = self._tokens[index + 1][1]
        if name not in _TABLES:
            raise HogQLError(f"Unknown table `{name}`.")
        self.table = name
        columns = [self._column()]
        while self._is(","):
            self._take()
            columns.append(self._column())
        self._take("keyword", "from")
        self._take("name")
        sql = f"SELECT {', '.join(columns)} FROM {_TABLES[self.table][0]}"
        where = group = order = ""
        rows = DEFAULT_RETURNED_ROWS
        if self._is("where"):
            self._take()
            where = f" WHERE {self._expr()}"
        if self._is("group"):
            self._take(), self._take("keyword", "by")
            group = " GROUP BY " + ", ".join(self._list(self._expr))
        if self._is("order"):
            self._take(), self._take("keyword", "by")
            order = " ORDER BY " + ", ".join(self._list(self._ordering))
        if self._is("limit"):
            self._take()
            rows = int(self._take("number"))
        if self._peek()[0] != "end":
            raise HogQLError(f"Syntax error: unexpected {self._peek()[1]!r}")
        return (sql + (_JOIN_PERSON if self.joins_person else "") + where + group + order
                + f" LIMIT {min(rows, MAX_SELECT_RETURNED_ROWS)}")

    def _list(self, item) -> list[str]:
        items = [item()]
        while self._is(","):
            self._take()
            items.append(item())
        return items

    def _column(self) -> str:
        expr = self._expr()
        if self._is("as"):
            self._take()
            alias = self._take("name")
            self.aliases.add(alias)
            return f'{expr} AS "{alias}"'
        return expr

    def _ordering(self) -> str:
        expr = self._expr()
        if self._is("asc") or self._is("desc"):
            return f"{expr} {self._take().upper()}"
        return expr

    # -- expressions: OR < AND < NOT < comparison < operand --------------------------------------

    def _expr(self) -> str:
        return self._joined("or", self._and)

    def _and(self) -> str:
        return self._joined("and", self._not)

    def _joined(self, keyword: str, operand) -> str:
        """``operand (keyword operand)*``, parenthesised when there is more than one."""
        parts = [operand()]
        while self._is(keyword):
            self._take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else "(" + f" {keyword.upper()} ".join(parts) + ")"

    def _not(self) -> str:
        if self._is("not"):
            self._take()
            return f"(NOT {self._not()})"
        return self._comparison()

    def _comparison(self) -> str:
        left = self._operand()
        negated = self._is("not") and self._peek(1)[1] == "in"
        if negated:
            self._take()
        if self._is("in"):
            self._take(), self._take("op", "(")
            values = self._list(self._operand)
            self._take("op", ")")
            return f"({left} {'NOT IN' if negated else 'IN'} ({', '.join(values)}))"
        if self._peek()[0] == "op" and self._peek()[1] in ("=", "==", "!=", "<>", "<", "<=",
                                                             ">", ">="):
            op = {"==": "=", "<>": "!="}.get(self._peek()[1], self._peek()[1])
            self._take()
            return f"({left} {op} {self._operand()})"
        return left

    def _operand(self) -> str:
        kind, value = self._peek()
        if kind == "string":
            self._take()
            return "'" + value[1:-1].replace("\\'", "''") + "'"
        if kind == "number":
            return self._take()
        if kind == "op" and value == "(":
            self._take()
            inner = self._expr()
            self._take("op", ")")
            return f"({inner})"
        if kind == "name" and self._peek(1) == ("op", "("):
            return self._call()
        if kind == "name":
            return self._field(self._take())
        raise HogQLError(f"Syntax error: unexpected {value or 'end of query'!r}")

    def _call(self) -> str:
        name = self._take("name")
        self._take("op", "(")
        distinct = False
        if self._is("distinct"):
            self._take()
            distinct = True
        args: list[str] = []
        if not self._is(")"):
            args = self._list(self._operand if not self._is("*") else lambda: self._take())
        self._take("op", ")")
        if name not in _FUNCTIONS:
            raise HogQLError(f"Unsupported function call `{name}(...)`")
        least, most, render = _FUNCTIONS[name]
        if distinct:
            if name != "count" or len(args) != 1:
                raise HogQLError("DISTINCT is only understood in count(DISTINCT x)")
            return f"count(DISTINCT {args[0]})"
        args = [a for a in args if a != "*"]
        if not least <= len(args) <= most:
            raise HogQLError(f"Function `{name}` expects {least} to {most} arguments")
        if name in ("toTimeZone", "toDateTime") and len(args) == 2 and args[1] != "'UTC'":
            raise HogQLError(f"The sandbox stores UTC only; `{name}` got {args[1]}")
        return render(args)

    def _field(self, chain: str) -> str:
        if chain in self.aliases:
            return f'"{chain}"'
        first, _, rest = chain.partition(".")
        table = self.table
        if first == "person" and table == "person_distinct_ids":
            self.joins_person = True
            table, (first, _, rest) = "persons", rest.partition(".")
            prefix = "person."
        else:
            prefix = f"{_TABLES[table][0]}."
        if first not in _TABLES[table][1]:
            raise HogQLError(f"Field not found: {chain}")
        if rest:
            if first != "properties":
                raise HogQLError(f"Field not found: {chain}")
            return f"json_extract({prefix}properties, {_json_path(rest)})"
        return prefix + first


class SQLiteQuery(NamedTuple):
    sql: str
    table: str  # the HogQL table queried
    reads_persons: bool  # whether persons must be up to date first


def to_sqlite(query: str) -> SQLiteQuery:
    """The SQLite statement that evaluates ``query`` over the sandbox's tables."""
    translator = _Translator(query)
    sql = translator.query()
    return SQLiteQuery(sql, translator.table,
                       translator.table != "events" or translator.joins_person)
