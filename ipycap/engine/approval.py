"""Grants asked for at the moment of access (Deno-style), and what refusals name.

When capsule code needs a grant that lies within the ceiling and a human can be asked, the
engine asks then: "Allow read access to data/notes.txt (grant: read data/)? [y]es / [n]o /
[a]lways this session".  The engine decides *whether* to ask (within the ceiling, not denied,
``CapsulePolicy.prompt`` on, no question already open) and *what* grant an answer makes; the
host (kernel, extension) only carries the question to the human and the answer back, through
``Registry.approver``.

The prompt the host shows starts with :data:`APPROVAL_PREFIX`; a capsule's own ``input()``
always starts with :data:`CAPSULE_INPUT_PREFIX`, so capsule code can never produce a prompt
that looks like an approval (a frontend such as the JupyterLab extension keys its dialog on
the prefix).  Capsule code never holds the approver: it lives on the registry, which no
capsule can reach, and answers come from the host's real input channel.
"""

from __future__ import annotations

import os
import unicodedata

#: Every approval prompt starts with this (the frontend's cue for a dialog).
APPROVAL_PREFIX = "ipycap-approval: "
#: Every prompt of a capsule's ``input()`` starts with this.
CAPSULE_INPUT_PREFIX = "capsule asks: "

ONCE, SESSION = "once", "session"
_ANSWERS = {"y": ONCE, "yes": ONCE, "a": SESSION, "always": SESSION}


def capsule_prompt(prompt: str) -> str:
    """The prompt a capsule's ``input()`` shows: always behind the fixed capsule prefix."""
    prompt = "".join([str(prompt)])
    return prompt if prompt.startswith(CAPSULE_INPUT_PREFIX) else CAPSULE_INPUT_PREFIX + prompt


def parse_answer(answer) -> str | None:
    """``'once'``, ``'session'`` or None (no, anything else, no answer)."""
    if type(answer) is not str:
        return None
    return _ANSWERS.get(answer.strip().lower())


#: Characters of the question's own structure: the grant clause, the answer hint, quotes.
_STRUCTURE = frozenset("()[]?'\"\\")
#: Printable letters that show as blank space (Hangul fillers): padding, not a name.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
#: Longest name a question shows (middle elided): a name cannot push the grant off screen.
SHOWN_MAX = 160


def shown(text: str, quote: bool = True) -> str:
    """A capsule-derived path or name as the question shows it: quoted (unless ``quote`` is
    false: a grant inside the engine's own "(grant: ...)" clause), with every character that
    could word the question escaped as ``\\uXXXX`` -- the question's own structure
    (parentheses, brackets, "?", quotes), control and format characters (an ANSI escape, a
    right-to-left override), non-ASCII blanks and look-alikes (fullwidth "（grant: ...）",
    U+2800, U+3164) -- and at most :data:`SHOWN_MAX` characters."""
    text = "".join([text]) if isinstance(text, str) else str(text)
    out = "".join(_escaped(ch) for ch in text)
    if len(out) > SHOWN_MAX:
        half = (SHOWN_MAX - 1) // 2
        out = out[:half] + "\u2026" + out[-half:]
    return f"'{out}'" if quote else out


def shown_whole(text: str, quote: bool = True) -> str:
    """:func:`shown` without the length limit: the kernel's ``%capsule request`` question
    names the path the human typed, which must read whole (its end is what differs)."""
    text = "".join([text]) if isinstance(text, str) else str(text)
    out = "".join(_escaped(ch) for ch in text)
    return f"'{out}'" if quote else out


def printable(text: str) -> str:
    """A path or name in a refusal message: escaped if it has control or format characters
    (an ANSI escape or a right-to-left override could redraw the message)."""
    return text if text.isprintable() else repr(text)


def _escaped(ch: str) -> str:
    if ch.isascii():
        if ch.isprintable() and ch not in _STRUCTURE:
            return ch
    elif (
        ch.isprintable()
        and ch not in _BLANK_LETTERS
        and unicodedata.category(ch)[0] in "LN"
        and unicodedata.normalize("NFKC", ch) == ch
    ):
        return ch  # a letter or digit of another script, shown as itself
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def display_path(resolved: str, typed: str | None = None, folder: bool = False) -> str:
    """``resolved`` as the user wrote it or relative to the working directory (short), else
    absolute; a folder ends with ``/``."""
    cwd = os.getcwd()
    if typed is not None and not folder and not os.path.isabs(typed) and _names(typed, resolved):
        text = typed
    elif resolved == cwd:
        text = "."
    elif resolved.startswith(cwd.rstrip("/") + "/"):
        text = os.path.relpath(resolved, cwd)
    else:
        text = resolved
    if folder and not text.endswith("/"):
        text += "/"
    return text


def _names(typed: str, resolved: str) -> bool:
    """Whether ``typed`` names ``resolved`` plainly (no symlink, no '..' that leads elsewhere
    than it reads), so showing it as typed cannot mislead."""
    return os.path.normpath(os.path.join(os.getcwd(), typed)) == resolved and ".." not in typed


def path_grant(registry, kind: str, resolved: str, typed: str | None) -> str | None:
    """What a session grant for this access covers: the folder of the path as typed (when it
    has one and it lies within the ceiling), else the file itself; None when the ceiling or
    the denied paths refuse both, so neither a hint nor a prompt would work."""
    candidates = []
    folder = os.path.dirname(resolved)
    if typed and os.path.dirname(typed) and folder != os.getcwd():
        candidates.append(folder)
    candidates.append(resolved)
    for target in candidates:
        if registry.path_grant_error(kind, target)[1] is None:
            return target
    return None


def path_question(kind: str, resolved: str, typed: str | None, grant: str) -> str:
    what = shown(display_path(resolved, typed))
    grant_shown = shown(display_path(grant, folder=grant != resolved), quote=False)
    return (
        f"Allow {kind} access to {what} (grant: {kind} {grant_shown})? "
        "[y]es / [n]o / [a]lways this session"
    )


def import_question(name: str) -> str:
    return (
        f"Allow import of {shown(name)} (grant: import {shown(name, quote=False)})? "
        "[y]es / [n]o / [a]lways this session"
    )
