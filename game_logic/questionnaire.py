"""The post-study questionnaire: items from a CSV file the researcher edits, who sees which item, and
the check of every answer. Pure (no oTree): the exit app renders and stores, this module decides.

File format (one row per item, header required; see docs/questionnaire.md):
  name      snake_case, unique: the column name in the questionnaire export
  kind      integer (low..high) | choice (one of `choices`) | scale (a whole number low..high, the two
            `choices` label its ends) | text (at most `high` characters, default 500)
  text      the question
  choices   options separated by |
  low, high bounds (integer, scale); high is the length limit for text
  required  yes | no
  shown_to  all, or conditions joined by ';', all of which must hold: selector | candidate (the game role;
            trust_game: trustor | trustee count as selector | candidate), disclosed | undisclosed (the
            identity treatment: undisclosed = hidden or false_label), undisclosed_selectors (shorthand)
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ('integer', 'choice', 'scale', 'text')
CONDITIONS = ('all', 'selector', 'candidate', 'disclosed', 'undisclosed', 'undisclosed_selectors')
COLUMNS = ('name', 'kind', 'text', 'choices', 'low', 'high', 'required', 'shown_to')
MAX_ITEMS = 30  # the exit app's Player has this many answer fields (q_1 … q_30)
DEFAULT_TEXT_LENGTH = 500
_NAME = re.compile(r'^[a-z][a-z0-9_]{0,39}$')
_DIGITS = re.compile(r'^[0-9]{1,9}$')


class QuestionnaireError(ValueError):
    """A questionnaire file that cannot be used; the message names the file, row and problem."""


@dataclass(frozen=True)
class Item:
    name: str
    kind: str
    text: str
    choices: tuple = ()
    low: int | None = None
    high: int | None = None
    required: bool = True
    shown_to: tuple = ('all',)

    def allowed(self) -> str:
        if self.kind in ('integer', 'scale'):
            return f'a whole number from {self.low} to {self.high}'
        if self.kind == 'choice':
            return 'one of the options'
        return f'at most {self.high} characters'


def _int_cell(value: str, what: str, where: str) -> int | None:
    value = (value or '').strip()
    if not value:
        return None
    if not re.fullmatch(r'-?[0-9]{1,9}', value):
        raise QuestionnaireError(f'{where}: {what} must be a whole number, not {value!r}')
    return int(value)


def parse_items(rows, source: str = 'questionnaire') -> list[Item]:
    """Rows (dicts keyed by COLUMNS) -> items; raises QuestionnaireError naming the row and the problem."""
    items, names = [], set()
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        where = f'{source}, row {number}'
        row = {key: (value or '').strip() for key, value in row.items() if key is not None}
        name, kind = row.get('name', ''), row.get('kind', '')
        if not _NAME.match(name):
            raise QuestionnaireError(f'{where}: name {name!r} must be snake_case (a-z, 0-9, _; at most 40)')
        if name in names:
            raise QuestionnaireError(f'{where}: name {name!r} is used twice')
        names.add(name)
        if kind not in KINDS:
            raise QuestionnaireError(f'{where}: kind {kind!r} must be one of {", ".join(KINDS)}')
        if not row.get('text'):
            raise QuestionnaireError(f'{where}: the question text is empty')
        choices = tuple(c.strip() for c in row.get('choices', '').split('|') if c.strip())
        low, high = _int_cell(row.get('low'), 'low', where), _int_cell(row.get('high'), 'high', where)
        if kind in ('integer', 'scale'):
            if low is None or high is None or low >= high:
                raise QuestionnaireError(f'{where}: {kind} needs low < high')
        if kind == 'choice' and len(choices) < 2:
            raise QuestionnaireError(f'{where}: choice needs at least two options separated by |')
        if kind == 'scale' and len(choices) != 2:
            raise QuestionnaireError(f'{where}: scale needs the labels of its two ends as choices (left|right)')
        if kind == 'text':
            high = high or DEFAULT_TEXT_LENGTH
            if high < 1:
                raise QuestionnaireError(f'{where}: text needs a positive length limit (high)')
        required = row.get('required', 'yes').lower()
        if required not in ('yes', 'no'):
            raise QuestionnaireError(f'{where}: required must be yes or no, not {required!r}')
        shown_to = tuple(c.strip() for c in (row.get('shown_to') or 'all').split(';') if c.strip())
        bad = [c for c in shown_to if c not in CONDITIONS]
        if bad or not shown_to:
            raise QuestionnaireError(f'{where}: shown_to {bad} must be among {", ".join(CONDITIONS)}')
        items.append(Item(name, kind, row['text'], choices, low, high, required == 'yes', shown_to))
    if len(items) > MAX_ITEMS:
        raise QuestionnaireError(f'{source}: {len(items)} items; at most {MAX_ITEMS}')
    return items


def load_items(path) -> list[Item]:
    """Read and check a questionnaire CSV file (UTF-8)."""
    path = Path(path)
    try:
        with path.open(newline='', encoding='utf-8-sig') as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise QuestionnaireError(f'{path}: the header lacks the column(s) {", ".join(missing)}')
            return parse_items(list(reader), str(path))
    except FileNotFoundError:
        raise QuestionnaireError(f'questionnaire file {path} does not exist') from None
    except UnicodeDecodeError:
        raise QuestionnaireError(f'{path} is not UTF-8 text (save it as CSV UTF-8)') from None


def shown(item: Item, role: str, identity: str) -> bool:
    """Whether a participant in this game role (selector/candidate) and identity treatment sees the item."""
    undisclosed = identity in ('hidden', 'false_label')
    checks = {
        'all': True, 'selector': role == 'selector', 'candidate': role == 'candidate',
        'disclosed': identity == 'disclosed', 'undisclosed': undisclosed,
        'undisclosed_selectors': undisclosed and role == 'selector',
    }
    return all(checks[condition] for condition in item.shown_to)


def check_answer(item: Item, raw) -> tuple[str, str | None]:
    """(the answer as stored, an error message or None). The answer is already cleaned text."""
    value = (raw or '').strip() if isinstance(raw, str) else ('' if raw is None else str(raw))
    if not value:
        return '', ('Please answer this question.' if item.required else None)
    if item.kind in ('integer', 'scale'):
        if not _DIGITS.match(value) or not item.low <= int(value) <= item.high:
            return '', f'Please enter {item.allowed()}.'
        return str(int(value)), None
    if item.kind == 'choice':
        if value not in item.choices:
            return '', 'Please choose one of the options.'
        return value, None
    if len(value) > item.high:
        return '', f'Your answer has {len(value)} characters; the limit is {item.high}.'
    return value, None
