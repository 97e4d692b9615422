"""Regression tests (red team 4, rt-limits): capsule-chosen text that the host prints itself.

Classes: (G) strings a capsule chose -- an exception's message, a refused path -- printed by
trusted code after the cell (IPython's traceback, the kernel's error reply, ``%capsule log`` /
``list``): one chokepoint each, ``capsule.error_for_host`` (terminal sanitiser) and the
registry views' cells (``terminal.cell_text``: controls shown escaped, blank runs folded so a
cell cannot forge a column or a row).  (J) the sanitiser dropped hiding backgrounds but kept
foregrounds of the terminal's own (unknown) background colour: black and white.
"""

from __future__ import annotations

import pytest

from ipycap import Capsule
from ipycap.engine.capsule import error_for_host
from ipycap.engine.registry import Registry
from ipycap.engine.terminal import cell_text, sanitize
from tests.redteam.shell_cells import run_shell, token

# -- 2. capsule text that the host prints is not sanitised -------------------------------------
# Class: strings chosen by capsule code that trusted code prints itself, after the cell, on
# the main thread (outside the capsule thread's stream wrapper): the exception message in the
# traceback IPython prints, registry event targets in `%capsule log` (and the kernel's command
# output).  Escapes reach the terminal; newlines forge table rows.


def test_exception_message_reaches_the_terminal_with_its_escapes(tmp_path):
    tok = token()
    src = f"%%capsule\nraise ValueError('x' + chr(27) + ']52;c;{tok}' + chr(7) + chr(27) + '[2J')"
    (rec,) = run_shell(tmp_path, {"source": src})
    shown = rec["stdout"] + rec["stderr"]
    assert rec["error"] == "ValueError"
    # Canary: the clipboard write reaches the terminal raw in the traceback IPython prints.
    assert "\x1b]52;c;" + tok not in shown, repr(shown[-300:])


def test_registry_log_prints_a_capsule_chosen_target_raw(tmp_path):
    tok = token()
    fake_row = f"\n01:00:00  grant   cap-99  read  /{tok}  (forged row)"
    path = "/nonexistent-" + tok + chr(27) + "]0;" + tok + chr(7) + fake_row
    src = f"%%capsule\ntry:\n    open({path!r})\nexcept PermissionError:\n    pass"
    _, log = run_shell(tmp_path, {"source": src}, {"source": "%capsule log 5"})
    shown = log["stdout"] + (log["result"] or "")
    # Canary: the view shows an escape sequence and a forged 'grant' row the capsule wrote.
    assert "\x1b]0;" not in shown and f"cap-99  read  /{tok}" not in shown, shown


@pytest.mark.parametrize(
    "source",
    [
        "raise ValueError('x' + chr(27) + ']52;c;TOK' + chr(7))",
        "raise OSError(2, 'gone' + chr(27) + '[2J', 'f' + chr(27) + ']0;TOK' + chr(7))",
        "open('/nonexistent' + chr(27) + ']52;c;TOK' + chr(7))",
        "class E(Exception):\n    pass\nraise E(chr(27) + ']52;c;TOK' + chr(7))",
        "raise SyntaxError(chr(27) + ']52;c;TOK' + chr(7))",
        "raise ExceptionGroup('g' + chr(27) + ']52;c;TOK' + chr(7), [ValueError(1)])",
    ],
    ids=["builtin", "oserror", "refusal", "own-class", "syntaxerror", "group"],
)
def test_error_for_host_sanitises_every_text_of_the_message(source):
    import traceback

    with pytest.raises(BaseException) as info:
        Capsule().run(source)
    fresh = error_for_host(info.value)
    shown = "".join(traceback.format_exception(fresh)) + str(fresh)
    assert "\x1b" not in shown and "\x07" not in shown, repr(shown)


def test_registry_views_show_capsule_text_on_one_cell():
    from ipycap.ipython.display import EventLogView, RegistryView

    registry = Registry()
    target = "/x" + chr(27) + "]0;t" + chr(7) + "\n01:00:00  grant   cap-9  read  /etc  ok"
    try:
        Capsule(registry=registry).run(f"open({target!r})")
    except PermissionError:
        pass
    for view in (EventLogView(registry), RegistryView(registry)):
        text, page = str(view), view._repr_html_()
        assert "\x1b" not in text + page and "\x07" not in text + page
        assert "cap-9  read" not in text and not any(
            line.startswith("01:00:00") for line in text.splitlines()
        )


def test_cell_text_folds_blanks_escapes_controls_and_caps_the_length():
    assert cell_text("a\nb  c\x1b[2J\u2028") == "a\\nb c\\x1b[2J\\u2028"
    assert len(cell_text("x" * 5000)) == 300
    assert cell_text(7) == "7"


# -- 7. the sanitiser lets a foreground colour hide text against the terminal's own background --
# Class: terminal.sanitize decides "cannot hide text" only between an explicit foreground and
# an explicit background; the terminal's default background is unknown to it, so true-colour
# or 256-colour black (dark themes, most terminals) and white (light themes) foregrounds are
# kept, and text printed in them is invisible -- what conceal (8) and same-hue backgrounds are
# removed for.  Variants: 38;5;16 / 38;5;231, 30 and 97 where the theme maps them to its
# background, dim (2) on top.


@pytest.mark.parametrize("sgr", ["38;2;0;0;0", "38;2;255;255;255", "38;5;16", "38;5;231"], ids=str)
def test_sanitiser_keeps_a_foreground_that_matches_a_default_background(sgr):
    from ipycap.engine.terminal import sanitize

    tok = token()
    clean = sanitize(f"visible \x1b[{sgr}m{tok}\x1b[0m visible")
    # Canary: the token is printed in pure black/white with no background of its own.
    assert sgr not in clean, repr(clean)


# Plain Python: print('visible \x1b[38;2;0;0;0mHIDDEN\x1b[0m visible') on a black terminal.


@pytest.mark.parametrize(
    "sgr", ["30", "97", "38;5;232", "38;5;255", "2;38;2;1;1;1", "38;2;250;250;250"]
)
def test_sanitiser_drops_every_black_or_white_foreground_without_a_background(sgr):
    clean = sanitize(f"a \x1b[{sgr}mHIDDEN\x1b[0m b")
    # Canary: HIDDEN printed in the default background's colour (dim may stay: it is no hue).
    assert clean in ("a HIDDEN b", "a \x1b[0;2mHIDDEN\x1b[0m b"), repr(clean)


@pytest.mark.parametrize(
    "sgr, kept",
    [
        ("31", "31"),
        ("30;43", "30;43"),  # black on yellow: IPython's own traceback highlight
        ("38;5;196", "38;5;196"),
        ("38;2;128;128;128", "38;2;128;128;128"),
    ],
)
def test_sanitiser_keeps_readable_colours(sgr, kept):
    assert f"\x1b[0;{kept}mX" in sanitize(f"\x1b[{sgr}mX")
