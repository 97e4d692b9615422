"""Capsule text output made safe for a terminal: an allow-list of SGR, nothing else.

Terminal IPython writes capsule output to the user's terminal byte for byte, and Jupyter
frontends interpret ANSI codes too.  Escape sequences there can write the clipboard (OSC 52),
set window titles (OSC 0/2), move the cursor or clear the screen to rewrite what the user
already read, and conceal text.  :func:`sanitize` keeps only

* SGR (``ESC [ ... m``) attributes from :data:`SGR_KEPT`: reset, bold, italic, underline and
  their resets, and colours; re-emitted as one normalised sequence of the whole state after
  each change, with a reset at the end of the text when any attribute is still on;
* a background colour only where it cannot hide text: a basic (16-colour) background behind an
  explicitly set basic foreground of another hue (256-colour and true-colour backgrounds,
  which can be made indistinguishable from any foreground, are dropped);
* a foreground colour only where it cannot match the terminal's own (unknown) background:
  black and white (30, 97, and 256/true colours of too little contrast with black or with
  white) only in front of a kept background;
* ``\\n`` and ``\\t``; ``\\r\\n`` becomes ``\\n``, a lone ``\\r`` a line break (it would let
  later text overwrite a line), and ``\\b`` deletes the character before it in the same text
  (or nothing).

Every other control character (C0, DEL, C1 including 8-bit CSI/OSC, and Unicode's
bidirectional controls, :data:`BIDI`, which reorder how text is shown) and every other escape
sequence -- OSC/DCS/APC/PM/SOS strings with their payload, cursor movement, erase, modes,
conceal (8), reverse video (7), blink -- is removed.  The engine module; no IPython.
"""

from __future__ import annotations

import re

#: SGR parameters kept as they are (besides colours): reset, bold, dim, italic, underline,
#: and the codes that turn those off.
SGR_KEPT = frozenset({0, 1, 2, 3, 4, 21, 22, 23, 24})

#: Unicode bidirectional controls: embeddings and overrides (U+202A-202E), isolates
#: (U+2066-2069), the marks LRM, RLM and ALM.  Displayed text they reorder is not the text
#: (Trojan Source, CVE-2021-42574): a capsule could make its output read as something else.
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"

# One token: an escape sequence (CSI, string commands, two-character escapes), a control
# character (a bidi control too), or a run of ordinary text.
_TOKEN = re.compile(
    r"(?P<csi>(?:\x1b\[|\x9b)(?P<params>[0-?]*)(?P<inter>[ -/]*)(?P<final>[@-~])?)"
    r"|(?P<string>(?:\x1b[\]P_^X]|[\x90\x9d\x9e\x9f\x98])(?:[^\x07\x1b\x9c]*)(?:\x07|\x1b\\|\x9c)?)"
    r"|(?P<esc>\x1b[ -/]*[0-~]?)"
    r"|(?P<crlf>\r\n)"
    rf"|(?P<ctrl>[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}])"
    rf"|(?P<text>[^\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]+|[\t\n])"
)


def _colour(params: list[int], i: int):
    """Parse a colour at params[i] (30-37, 90-97, 38;5;n, 38;2;r;g;b and bg equivalents).

    Returns (target 'fg'|'bg'|None, colour, next index); colour is ('basic', 0-15),
    ('256', n), ('rgb', r, g, b) or None (default)."""
    p = params[i]
    if 30 <= p <= 37:
        return "fg", ("basic", p - 30), i + 1
    if 90 <= p <= 97:
        return "fg", ("basic", p - 90 + 8), i + 1
    if 40 <= p <= 47:
        return "bg", ("basic", p - 40), i + 1
    if 100 <= p <= 107:
        return "bg", ("basic", p - 100 + 8), i + 1
    if p in (39, 49):
        return ("fg" if p == 39 else "bg"), None, i + 1
    if p in (38, 48):
        target = "fg" if p == 38 else "bg"
        if i + 2 < len(params) + 1 and i + 1 < len(params) and params[i + 1] == 5:
            if i + 2 < len(params) and 0 <= params[i + 2] <= 255:
                n = params[i + 2]
                return target, (("basic", n) if n < 16 else ("256", n)), i + 3
            return None, None, len(params)
        if i + 1 < len(params) and params[i + 1] == 2 and i + 4 < len(params):
            rgb = params[i + 2 : i + 5]
            if all(0 <= c <= 255 for c in rgb):
                return target, ("rgb", *rgb), i + 5
        return None, None, len(params)  # malformed: the rest of the sequence is dropped
    return None, None, i + 1


class _State:
    __slots__ = ("attrs", "fg", "bg")

    def __init__(self):
        self.attrs: set[int] = set()
        self.fg = None
        self.bg = None

    def apply(self, params: list[int]) -> None:
        i = 0
        while i < len(params):
            p = params[i]
            if p == 0:
                self.attrs.clear()
                self.fg = self.bg = None
                i += 1
                continue
            target, colour, nxt = _colour(params, i)
            if target == "fg":
                self.fg = colour
            elif target == "bg":
                self.bg = colour
            elif p in SGR_KEPT:
                if p in (21, 22):
                    self.attrs -= {1, 2}
                elif p in (23, 24):
                    self.attrs.discard(p - 20)
                else:
                    self.attrs.add(p)
            i = nxt

    def visible_bg(self):
        """The background, when it cannot hide text (see the module docstring)."""
        bg, fg = self.bg, self.fg
        if bg is None or bg[0] != "basic" or fg is None or fg[0] != "basic":
            return None
        return bg if bg[1] % 8 != fg[1] % 8 else None

    def visible_fg(self):
        """The foreground, unless it may be the colour of the terminal's own background:
        black or white (basic 30/97, or a 256/true colour of too little contrast with black
        or with white) is kept only in front of a kept background of another hue."""
        fg = self.fg
        if fg is None or self.visible_bg() is not None:
            return fg
        if fg[0] == "basic":
            return None if fg[1] in (0, 15) else fg
        return fg if _LOW_CONTRAST_MIN <= _luminance(fg) <= _LOW_CONTRAST_MAX else None

    def is_plain(self) -> bool:
        return not self.attrs and self.visible_fg() is None and self.visible_bg() is None

    def sequence(self) -> str:
        codes = ["0", *(str(a) for a in sorted(self.attrs))]
        for colour, base in ((self.visible_fg(), 30), (self.visible_bg(), 40)):
            if colour is None:
                continue
            if colour[0] == "basic":
                n = colour[1]
                codes.append(str(base + n if n < 8 else base + 60 + n - 8))
            elif colour[0] == "256":
                codes.append(f"{base + 8};5;{colour[1]}")
            else:
                codes.append(f"{base + 8};2;{colour[1]};{colour[2]};{colour[3]}")
        return "\x1b[" + ";".join(codes) + "m"


# A foreground needs a contrast ratio of 1.5 with black *and* with white (WCAG's formula,
# (L1 + 0.05) / (L2 + 0.05)) to stay readable on a dark and on a light default background.
_LOW_CONTRAST_MIN = 1.5 * 0.05 - 0.05
_LOW_CONTRAST_MAX = 1.05 / 1.5 - 0.05
_CUBE = (0, 95, 135, 175, 215, 255)


def _rgb(colour) -> tuple[int, int, int]:
    if colour[0] == "rgb":
        return colour[1], colour[2], colour[3]
    n = colour[1]
    if n >= 232:  # the greyscale ramp
        g = 8 + 10 * (n - 232)
        return g, g, g
    n -= 16
    return _CUBE[n // 36], _CUBE[n // 6 % 6], _CUBE[n % 6]


def _luminance(colour) -> float:
    """WCAG relative luminance of a 256-colour or true colour (0 black .. 1 white)."""

    def lin(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = _rgb(colour)
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def _params(text: str) -> list[int] | None:
    if not text:
        return [0]
    if not re.fullmatch(r"[0-9;]*", text):
        return None  # private or ':'-separated parameters: not an SGR this filter knows
    return [int(p) if p else 0 for p in text.split(";")]


def sanitize(text: str) -> str:
    """``text`` with only the allowed SGR attributes and line breaks (module docstring)."""
    if type(text) is not str:
        text = "".join([text]) if isinstance(text, str) else str(text)
    if text.isprintable() or not _NEEDS.search(text):
        return text
    out: list[str] = []
    state = _State()
    shown = ""  # the SGR sequence currently in effect in ``out``
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "text":
            out.append(m.group())
        elif kind == "crlf":
            out.append("\n")
        elif kind == "ctrl":
            ch = m.group()
            if ch == "\r":
                out.append("\n")
            elif ch == "\b":
                _backspace(out)
        elif kind == "csi" or m.group("csi"):
            if m.group("final") == "m" and not m.group("inter"):
                params = _params(m.group("params"))
                if params is not None:
                    state.apply(params)
                    seq = "" if state.is_plain() else state.sequence()
                    if seq != shown:
                        out.append(seq or "\x1b[0m")
                        shown = seq
        # string commands (OSC, DCS, ...) and other escapes are dropped whole
    if shown:
        out.append("\x1b[0m")
    return "".join(out)


# Anything but printable text, \n and \t (str.isprintable() is False for \n and \t too).
_NEEDS = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]")


def _backspace(out: list[str]) -> None:
    """Delete the last character written, unless it is a line break or part of an SGR."""
    for i in range(len(out) - 1, -1, -1):
        piece = out[i]
        if not piece or piece.startswith("\x1b"):
            if piece.startswith("\x1b"):
                return  # never reach back through an attribute change
            continue
        if piece[-1] == "\n":
            return
        out[i] = piece[:-1]
        return


_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")
_BLANKS = re.compile(r"\s{2,}")

#: Longest cell a table shows (the rest is cut with an ellipsis).
CELL_MAX = 300


def cell_text(value, limit: int = CELL_MAX) -> str:
    """Text (often capsule-chosen: a path, a refusal) as one cell of a text table: control
    characters, escapes included, shown as ``\\xNN``/``\\n``, so nothing reaches the
    terminal; blank runs folded to one space, since two spaces separate columns and a line
    break a row, so a cell cannot forge either; at most ``limit`` characters."""
    text = "".join([value]) if isinstance(value, str) else str(value)
    text = _CONTROL.sub(_escape, text)
    text = _BLANKS.sub(" ", text)
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


def _escape(m) -> str:
    ch = m.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch)
    return named or (f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")


__all__ = ["BIDI", "SGR_KEPT", "cell_text", "sanitize"]
