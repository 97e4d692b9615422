"""Parsing a magic's line with suggestions: a mistyped flag or action gets "did you mean".

``%config`` suggests the trait a user meant; the magics' flags (declared with
``magic_arguments``) should too, since a typo in ``--allow-read`` otherwise reads as a refusal
of something the user never asked for.
"""

from __future__ import annotations

import argparse
import difflib
import re

from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


#: Lines already parsed, per parser (a cell re-run with the same flags is not parsed again:
#: argparse took ~0.1 ms of a trivial %%capsule cell).  Each caller gets its own copy.
_PARSED: dict = {}
_PARSED_MAX = 256


def parse_magic_line(magic, line: str):
    """``parse_argstring(magic, line)``, with a "did you mean" for unknown flags and choices."""
    parser = magic.parser
    key = (id(parser), line)
    hit = _PARSED.get(key) if type(line) is str else None
    if hit is None or hit[0] is not parser:
        args = _parse_magic_line(magic, line)
        if type(line) is str:
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[key] = (parser, _copy(args))
        return args
    return _copy(hit[1])


def _copy(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(
        **{k: list(v) if type(v) is list else v for k, v in vars(args).items()}
    )


def _parse_magic_line(magic, line: str):
    known = sorted(o for o in magic.parser._option_string_actions if o.startswith("--"))
    for word in line.split():
        flag = word.partition("=")[0]
        if not flag.startswith("--") or flag == "--" or flag in known:
            continue
        if any(k.startswith(flag) for k in known):
            continue  # an abbreviation argparse accepts (or calls ambiguous itself)
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"the flags are {', '.join(known)}"
        raise UsageError(f"unknown flag {flag}: {hint}")
    try:
        return parse_argstring(magic, line)
    except UsageError as e:
        m = _INVALID_CHOICE.search(str(e))
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.5)
            if close:
                raise UsageError(f"{e}; did you mean {close[0]!r}?") from None
        raise
