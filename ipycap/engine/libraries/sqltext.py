"""File names inside query text: polars SQL's table functions.

polars SQL reads files named inside the query (``SELECT * FROM read_csv('/any/file')``,
``read_parquet``, ``read_ipc``, ``read_json``, globs too) in Rust: no Python open, so no audit
event and no tripwire, and no path argument for the profile to check.  polars exposes no
parser of its own to ask, so a capsule's query is refused when it may call a table function:

- any ``read_*``/``scan_*`` name followed by ``(`` anywhere in the text (strings and comments
  included: a tokenizer that disagreed with polars' about where a string ends must not let a
  call through);
- any other name followed by ``(`` where a table goes (after ``FROM``, ``JOIN`` or a comma
  in a ``FROM`` list), except the few table functions that read no file (``UNNEST``).

Queries over registered frames (the capsule's own, or what it may read) are unchanged.
"""

from __future__ import annotations

import re

#: Table functions that read no file.
SAFE_TABLE_FUNCTIONS = frozenset({"unnest", "lateral"})

_FILE_CALL = re.compile(r"\b(?:read|scan)_\w*\W*\(", re.IGNORECASE)
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^']|'')*'|\$\$.*?\$\$)
  | (?P<ident>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<punct>[(),.;])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
#: Keywords that end a FROM list at the same depth.
_END_FROM = frozenset(
    "where group order having limit offset union except intersect qualify window select "
    "on using fetch set values returning".split()
)


def _tokens(query: str):
    for m in _TOKEN.finditer(query):
        kind = m.lastgroup
        if kind == "space":
            continue
        yield kind, m.group()


def _name(token: str) -> str:
    if token[:1] in '"`[':
        token = token[1:-1]
    return token.lower()


def table_function(query: str) -> str | None:
    """The table function ``query`` may call (its name as written), or None."""
    m = _FILE_CALL.search(query)
    if m is not None:
        return re.match(r"\w+", m.group()).group()
    tokens = list(_tokens(query))
    in_from = [False]  # per parenthesis depth
    for i, (kind, text) in enumerate(tokens):
        after = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "punct":
            if text == "(":
                in_from.append(False)
            elif text == ")":
                if len(in_from) > 1:
                    in_from.pop()
            elif text == ";":
                in_from[-1] = False
            continue
        if kind != "ident":
            continue
        word = _name(text)
        if kind == "ident" and text[:1] not in '"`[' and word in ("from", "join"):
            in_from[-1] = True
            continue
        if text[:1] not in '"`[' and word in _END_FROM:
            in_from[-1] = False
            continue
        if after == "(" and in_from[-1] and word not in SAFE_TABLE_FUNCTIONS:
            return text
    return None
