"""Text written by a participant or an LLM: cleaned before it is stored (`clean_text`), escaped for oTree's
templates, which do not auto-escape (`escape_text`); and the plain whole numbers a form accepts
(`plain_integer`). No oTree import here."""
import html
import re

# Removed by clean_text: NUL and the other C0 controls except tab and newline, DEL and the C1 controls
# (PostgreSQL refuses NUL in text; the others are invisible), the bidirectional controls (LRE/RLE/PDF/
# LRO/RLO U+202A–U+202E, the isolates U+2066–U+2069, LRM/RLM U+200E/U+200F, ALM U+061C: they reorder what
# a reader sees, e.g. a card's text), and lone surrogates (not encodable in UTF-8).
_UNSAFE_CHARACTERS = re.compile(
    '[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]'
)
# A plain whole number as a participant types it: ASCII digits, an optional leading minus, nothing else.
_PLAIN_INTEGER = re.compile('-?[0-9]+', re.ASCII)


def clean_text(text: str) -> str:
    """Participant or LLM text as it is stored: line breaks become \\n, and NUL, other control
    characters (tab and newline stay) and bidirectional controls are removed. Nothing else changes."""
    text = (text or '').replace('\r\n', '\n').replace('\r', '\n')
    return _UNSAFE_CHARACTERS.sub('', text)


def plain_integer(raw) -> int | None:
    """The whole number `raw` spells in plain ASCII digits ('12', '-1'), else None.

    Python's int() also takes ' 5 ', '+5', '1_000' and other scripts' digits ('٥' is 5); a form must not.
    Bounds are not checked here (the form fields' min/max do that).
    """
    raw = str(raw)
    if not _PLAIN_INTEGER.fullmatch(raw):
        return None
    try:
        return int(raw)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return None


def escape_text(text: str) -> str:
    """Participant or LLM text made safe for oTree templates; keeps line breaks."""
    return html.escape(text or '', quote=True).replace('\r\n', '\n').replace('\n', '<br>')
