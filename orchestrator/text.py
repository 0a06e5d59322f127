"""User text on a terminal: shown, never obeyed."""

from __future__ import annotations


def terminal_text(text: str) -> str:
    """``text`` with every character a terminal would act on (escape sequences, line and carriage
    breaks, bells, bidi overrides) shown as its escape, e.g. ``\\x1b``.

    Validation refuses them in display names and labels, but file names, job keys of older rows and
    the API's own messages reach the screen too. Markup is a separate matter: the CLI hands user text
    to rich as :class:`rich.text.Text` (or with ``markup=False``), never as markup.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
