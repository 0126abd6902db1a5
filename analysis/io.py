"""Loading and validating the experiment's exports (schema: game_logic/export_schema.py, docs/codebook.md).

Three exports are understood:

* ``decisions``  – partner_selection ``custom_export`` (one row per selector × round),
* ``candidates`` – partner_selection ``custom_export_candidates`` (one row per candidate × round),
* ``trust_game`` – trust_game ``custom_export`` (one row per trustor × round).

Every problem with a file raises :class:`ExportError` whose message names the problem (the file,
the missing columns, the bad values and their rows), so the command line can print it without a
traceback. Missing trials are never dropped silently: a decision without a choice is kept and
flagged (``excluded_from_fit``), and :func:`exclusion_summary` reports the counts.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

# Column lists in the order the apps write them (docs/codebook.md): the apps' own definition, so a
# renamed column fails validation here instead of silently reading the wrong field.
from game_logic.export_schema import AI_CALL_COLUMNS, CANDIDATE_COLUMNS, DECISION_COLUMNS, TRUST_GAME_COLUMNS

__all__ = [
    'ExportError', 'DECISION_COLUMNS', 'CANDIDATE_COLUMNS', 'TRUST_GAME_COLUMNS', 'TREATMENTS',
    'detect_export_kind', 'read_export', 'read_exports', 'load_decisions', 'load_candidates',
    'load_trust_game',
    'validate_decisions', 'validate_candidates', 'validate_trust_game', 'exclusion_summary',
    'split_cards', 'fit_sample', 'write_export',
]

TREATMENTS = ('hidden', 'disclosed', 'false_label')
KINDS = ('ai', 'human')

_SCHEMAS = {
    'decisions': DECISION_COLUMNS,
    'candidates': CANDIDATE_COLUMNS,
    'trust_game': TRUST_GAME_COLUMNS,
    'ai_calls': AI_CALL_COLUMNS,
}
# Columns added to a schema after exports were already collected: files without them still load, the
# column read as empty (unknown).
_CONFIG_ID = ('config_name', 'config_id')
_COMPOSITION = ('group_incomplete', 'group_selectors', 'group_human_candidates', 'group_ai_candidates')
# Before AI selectors every selector was a person: files without the marks read as human (see validate_decisions).
_SELECTOR_MARKS = ('selector_kind', 'selector_policy', 'selector_params', 'choice_fallback')
_ADDED_LATER = {
    'decisions': ('belief_round_paid', *_CONFIG_ID, *_COMPOSITION, *_SELECTOR_MARKS, 'ai_composition',
                  'choice_reassigned', 'picked_candidate_id'),
    'candidates': (*_CONFIG_ID, *_COMPOSITION, 'ai_composition'),
    'trust_game': _CONFIG_ID,
    'ai_calls': (*_CONFIG_ID, *_COMPOSITION),
}
# Columns that identify an export even when others are missing (used to name a wrong file).
_SIGNATURES = {
    'decisions': {'selector_id', 'chose_ai', 'offered_kinds'},
    'candidates': {'candidate_id', 'message_json', 'times_chosen'},
    'trust_game': {'trustor_id', 'partner_kind', 'pair_id'},
    'ai_calls': {'decision', 'raw_reply_json', 'latency_ms'},
}
_DESCRIPTIONS = {
    'decisions': 'partner_selection decisions export (custom_export, partner_selection_custom.csv)',
    'candidates': 'partner_selection candidates export (custom_export_candidates)',
    'trust_game': 'trust_game export (custom_export)',
    'ai_calls': 'AI-calls export (custom_export_ai_calls)',
    'otree_wide': 'wide CSV of oTree (all apps or one app: participant.code, …)',
}


class ExportError(ValueError):
    """A file that is not a valid export; the message says which file and what is wrong."""


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _wide_unicode(raw: bytes) -> str:
    """'UTF-16 (little-endian)' etc. if the bytes look like UTF-16/32 text (byte-order mark or, without
    one, NUL bytes in every other position of ASCII text), else ''."""
    for bom, name in ((b'\xff\xfe\x00\x00', 'UTF-32 (little-endian)'), (b'\x00\x00\xfe\xff', 'UTF-32 (big-endian)'),
                      (b'\xff\xfe', 'UTF-16 (little-endian)'), (b'\xfe\xff', 'UTF-16 (big-endian)')):
        if raw.startswith(bom):
            return name
    head = raw[:4096]
    if len(head) >= 8:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return 'UTF-16 (little-endian)'
        if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return 'UTF-16 (big-endian)'
    return ''


def _read_csv_text(path) -> pd.DataFrame:
    """Read a CSV as strings, keeping empty cells as '' (missing is explicit, never NaN-guessed)."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f'{path}: file not found')
    if path.is_dir():
        raise ExportError(f'{path}: is a directory, expected a CSV export file')
    raw = path.read_bytes()
    if not raw.strip():
        raise ExportError(f'{path}: the file is empty (no header row, no data)')
    encoding = _wide_unicode(raw)
    if encoding:
        raise ExportError(f'{path}: the file is {encoding} text, not UTF-8 (as oTree writes it); '
                          'save it as UTF-8 CSV')
    if b'\x00' in raw[:4096]:
        raise ExportError(f'{path}: not a CSV text file (binary content)')
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        raise ExportError(f'{path}: not a UTF-8 CSV text file ({exc.reason} at byte {exc.start}; '
                          'perhaps Latin-1 / Windows-1252: save it as UTF-8 CSV)') from None
    try:
        # csv module, like oTree's writer: quoted fields may hold commas and quotes.
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ExportError(f'{path}: not a readable CSV file ({exc})') from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:  # e.g. only commas, or only a byte-order mark
        raise ExportError(f'{path}: the file is empty (no header row, no data)')
    header = [name.strip() for name in rows[0]]
    if len(header) == 1:
        for delimiter, name in ((';', 'semicolons'), ('\t', 'tabs'), ('|', "'|'")):
            if header[0].count(delimiter) >= 2:
                raise ExportError(f'{path}: the fields are separated by {name}, not commas (as oTree writes '
                                  'them; a spreadsheet may have re-saved it): save it as comma-separated CSV')
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ExportError(f'{path}: not a well-formed export: the header repeats column(s) {", ".join(map(repr, repeated))}')
    width = len(header)
    bad = [i + 2 for i, row in enumerate(rows[1:]) if len(row) != width]
    if bad:
        raise ExportError(
            f'{path}: not a well-formed CSV export: {len(bad)} row(s) do not have the header\'s {width} '
            f'fields (first at line {bad[0]})'
        )
    return pd.DataFrame(rows[1:], columns=header, dtype=object)


def detect_export_kind(columns) -> str:
    """Name the export a set of column names belongs to.

    Returns 'decisions', 'candidates', 'trust_game', 'ai_calls' or 'otree_wide'; raises
    :class:`ExportError` when the columns match none of them.
    """
    columns = set(columns)
    for kind, schema in _SCHEMAS.items():
        if set(schema) <= columns:
            return kind
    for kind, signature in _SIGNATURES.items():
        if signature <= columns:
            return kind
    if any(c.startswith('participant.') or c.startswith('session.') for c in columns):
        return 'otree_wide'
    shown = ', '.join(sorted(columns)[:8]) + (' …' if len(columns) > 8 else '')
    raise ExportError(
        'not an export of this project: the header matches none of the decisions, candidates or '
        f'trust_game exports (columns found: {shown})'
    )


def read_export(path) -> tuple[str, pd.DataFrame]:
    """Read and validate any export; return (kind, validated DataFrame).

    kind is 'decisions', 'candidates', 'trust_game' or 'ai_calls'. Other files raise :class:`ExportError`.
    """
    data = _read_csv_text(path)
    try:
        kind = detect_export_kind(data.columns)
    except ExportError as exc:
        raise ExportError(f'{path}: {exc}') from None
    if kind not in _SCHEMAS:
        raise ExportError(
            f'{path}: this is the {_DESCRIPTIONS[kind]}, not one the analysis reads; use the '
            f'{_DESCRIPTIONS["decisions"]} (optionally with the candidates export)'
        )
    return kind, _VALIDATORS[kind](data, source=str(path))


def read_exports(paths) -> tuple[str, pd.DataFrame]:
    """Read several exports of one kind as one: e.g. the same export from each server of a study run on
    several oTree servers (docs/hosting.md, "Several servers behind HAProxy"; scripts/cluster.sh export).

    Each file is read and validated as by :func:`read_export`; then all must be the same kind with the
    same columns in the same order (the same code ran everywhere), and no session may appear in two
    files (a file given twice, or one server's export copied into another's, would count its decisions
    twice). Participant codes are checked the same way for the id column of the kind. A file with a
    header and no rows (a server nobody reached) adds nothing; at least one file must have rows.

    Parameters
    ----------
    paths : iterable of paths (one path alone is allowed).

    Returns
    -------
    (kind, DataFrame): the rows of every file in the order given, with a fresh index and the columns
    of :func:`read_export`'s result for that kind.
    """
    paths = list(paths)
    if not paths:
        raise ExportError('no export files given')
    frames, first = [], None
    sessions, people = {}, {}
    for path in paths:
        raw = _read_csv_text(path)
        try:
            kind = detect_export_kind(raw.columns)
        except ExportError as exc:
            raise ExportError(f'{path}: {exc}') from None
        if kind not in _SCHEMAS:
            raise ExportError(f'{path}: this is the {_DESCRIPTIONS[kind]}, not one the analysis reads')
        if first is None:
            first = (path, kind, list(raw.columns))
        elif kind != first[1]:
            raise ExportError(f'{path} is a {kind} export but {first[0]} is a {first[1]} export: '
                              'give files of one kind')
        elif list(raw.columns) != first[2]:
            extra = sorted(set(raw.columns) ^ set(first[2]))
            raise ExportError(f'{path}: its columns differ from those of {first[0]}'
                              + (f' ({", ".join(extra)})' if extra else ' (order)')
                              + ': were both exported by the same version of the apps?')
        if raw.empty:  # a server that had no participants: its header is checked, it adds no rows
            continue
        data = _VALIDATORS[kind](raw, source=str(path))
        for code in sorted(set(data['session_code'].astype(str))):
            if code in sessions:
                raise ExportError(f'session {code} is in both {sessions[code]} and {path}: '
                                  'the same export given twice?')
            sessions[code] = path
        id_column = _PARTICIPANT_ID.get(kind)
        codes = set(data[id_column].astype(str)) if id_column in data.columns else set()
        for code in sorted(codes & set(people)):
            raise ExportError(f'participant {code} ({id_column}) is in both {people[code]} and {path}')
        people.update(dict.fromkeys(codes, path))
        frames.append(data)
    if not frames:
        raise ExportError(f'none of {", ".join(map(str, paths))} has a row')
    return first[1], pd.concat(frames, ignore_index=True)


# the column holding a participant code, per export kind (read_exports checks it across files)
_PARTICIPANT_ID = {'decisions': 'selector_id', 'trust_game': 'trustor_id'}


def _load(path, expected: str) -> pd.DataFrame:
    data = _read_csv_text(path)
    _require_columns(data, expected, source=str(path))
    return _VALIDATORS[expected](data, source=str(path))


def load_decisions(path) -> pd.DataFrame:
    """Read and validate a partner_selection decisions export; see :func:`validate_decisions`."""
    return _load(path, 'decisions')


def load_candidates(path) -> pd.DataFrame:
    """Read and validate a partner_selection candidates export; see :func:`validate_candidates`."""
    return _load(path, 'candidates')


def load_trust_game(path) -> pd.DataFrame:
    """Read and validate a trust_game export; see :func:`validate_trust_game`."""
    return _load(path, 'trust_game')


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
def _require_columns(data: pd.DataFrame, expected: str, source: str) -> None:
    missing = [c for c in _SCHEMAS[expected] if c not in data.columns and c not in _ADDED_LATER.get(expected, ())]
    if not missing:
        return
    try:
        actual = detect_export_kind(data.columns)
    except ExportError:
        actual = None
    hint = ''
    if actual and actual != expected:
        hint = f'; this looks like the {_DESCRIPTIONS[actual]}'
    raise ExportError(
        f'{source}: not a valid {_DESCRIPTIONS[expected]}: missing column(s) '
        + ', '.join(repr(c) for c in missing) + hint
    )


def _rows(mask: pd.Series) -> str:
    # Spreadsheet line numbers: header is line 1.
    lines = (np.flatnonzero(np.asarray(mask)) + 2).tolist()
    shown = ', '.join(map(str, lines[:5]))
    return f'line {shown}' + (f' and {len(lines) - 5} more' if len(lines) > 5 else '')


def _blank(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip() == ''


def _as_number(data, column, source, *, integer=False, allow_empty=False, lower=None, upper=None):
    """Column as float (NaN for empty cells when allowed); bad cells raise ExportError."""
    text = data[column].astype(str).str.strip()
    empty = text == ''
    values = pd.to_numeric(text.where(~empty, None), errors='coerce').astype(float)
    bad = (values.isna() & ~empty) | np.isinf(values)  # 'inf' and '1e400' parse, but are no count
    if bad.any():
        example = text[bad].iloc[0]
        raise ExportError(f'{source}: column {column!r} must be numeric; found {example!r} at {_rows(bad)}')
    if empty.any() and not allow_empty:
        raise ExportError(f'{source}: column {column!r} has empty cells at {_rows(empty)}')
    if integer:
        fractional = values.notna() & (values != np.round(values))
        if fractional.any():
            raise ExportError(
                f'{source}: column {column!r} must hold whole numbers; found {text[fractional].iloc[0]!r} '
                f'at {_rows(fractional)}'
            )
    if lower is not None and (values < lower).any():
        raise ExportError(f'{source}: column {column!r} must be >= {lower}; see {_rows(values < lower)}')
    if upper is not None and (values > upper).any():
        raise ExportError(f'{source}: column {column!r} must be <= {upper}; see {_rows(values > upper)}')
    return values


def _as_flag(data, column, source, *, allow_empty=False):
    """A 1/0 column as float 1.0/0.0 (NaN for empty when allowed); anything else is an error."""
    text = data[column].astype(str).str.strip()
    allowed = {'0', '1'} | ({''} if allow_empty else set())
    bad = ~text.isin(allowed)
    if bad.any():
        wanted = '{0, 1, empty}' if allow_empty else '{0, 1}'
        raise ExportError(
            f'{source}: column {column!r} must be one of {wanted}; found {text[bad].iloc[0]!r} at {_rows(bad)}'
        )
    return text.map({'0': 0.0, '1': 1.0, '': np.nan}).astype(float)


def _check_choice(data, column, allowed, source, *, allow_empty=False):
    text = data[column].astype(str).str.strip()
    ok = text.isin(set(allowed) | ({''} if allow_empty else set()))
    if not ok.all():
        raise ExportError(
            f'{source}: column {column!r} must be one of {sorted(allowed)}'
            + (' or empty' if allow_empty else '') + f'; found {text[~ok].iloc[0]!r} at {_rows(~ok)}'
        )
    return text


def split_cards(series: pd.Series) -> pd.Series:
    """A ';'-separated per-card column as lists of strings ('' -> [])."""
    return series.astype(str).map(lambda s: s.split(';') if s != '' else [])


def validate_decisions(data: pd.DataFrame, source: str = 'decisions') -> pd.DataFrame:
    """Check and type a decisions export.

    Parameters
    ----------
    data : DataFrame of strings with the codebook's columns (as read from the CSV).
    source : name used in error messages (usually the file path).

    Returns
    -------
    DataFrame with numeric columns as floats (NaN = empty cell) and the added columns

    * ``group_key`` – ``session_code:group_id`` (group ids repeat across sessions),
    * ``no_choice`` – True when the selector made no choice (timed out or empty ``chose_ai``),
    * ``return_share`` – ``amount_returned / amount_received_by_candidate`` (NaN when nothing sent),
    * ``excluded_from_fit`` – True for decisions the fits leave out by default (``no_choice``).
    """
    _require_columns(data, 'decisions', source)
    if data.empty:
        raise ExportError(f'{source}: the export has a header but no decision rows')
    out = data.copy()
    for column in _ADDED_LATER['decisions']:
        if column not in out.columns:
            out[column] = 'human' if column in ('selector_kind', 'selector_policy') else ''
    out['selector_kind'] = _check_choice(out, 'selector_kind', KINDS, source)
    out['treatment'] = _check_choice(out, 'treatment', TREATMENTS, source)
    for column in ('session_code', 'selector_id'):
        blank = _blank(out[column])
        if blank.any():
            raise ExportError(f'{source}: column {column!r} has empty cells at {_rows(blank)}')
        out[column] = out[column].astype(str).str.strip()
    out['group_id'] = _as_number(out, 'group_id', source, integer=True, lower=0)
    out['round'] = _as_number(out, 'round', source, integer=True, lower=1)
    out['n_candidates_offered'] = _as_number(out, 'n_candidates_offered', source, integer=True, lower=0)
    out['n_ai_offered'] = _as_number(out, 'n_ai_offered', source, integer=True, lower=0)
    out['ai_share_offered'] = _as_number(out, 'ai_share_offered', source, allow_empty=True, lower=0, upper=1)
    out['chose_ai'] = _as_flag(out, 'chose_ai', source, allow_empty=True)
    out['chosen_kind'] = _check_choice(out, 'chosen_kind', KINDS, source, allow_empty=True)
    out['chosen_position'] = _as_number(out, 'chosen_position', source, integer=True, allow_empty=True, lower=1)
    for column in ('amount_sent', 'multiplier', 'amount_received_by_candidate'):
        out[column] = _as_number(out, column, source, allow_empty=True, lower=0)
    out['amount_returned'] = _as_number(out, 'amount_returned', source, allow_empty=True, lower=0)
    for column in ('selector_payoff', 'belief_n_correct', 'belief_bonus', 'seconds_on_choice_page'):
        out[column] = _as_number(out, column, source, allow_empty=True)
    out['choice_timed_out'] = _as_flag(out, 'choice_timed_out', source)
    out['belief_round_paid'] = _as_flag(out, 'belief_round_paid', source, allow_empty=True)
    out['return_timed_out'] = _as_flag(out, 'return_timed_out', source, allow_empty=True)
    out['return_fallback'] = _as_flag(out, 'return_fallback', source, allow_empty=True)
    # empty in files from before candidate_capacity (no choice was ever moved)
    out['choice_reassigned'] = _as_flag(out, 'choice_reassigned', source, allow_empty=True)
    for column in ('ai_composition', 'picked_candidate_id'):
        out[column] = out[column].astype(str)
    for column in ('offered_candidate_ids', 'offered_kinds', 'offered_badges', 'offered_display_labels',
                   'belief_guesses', 'chosen_candidate_id', 'chosen_badge', 'selector_label'):
        out[column] = out[column].astype(str)

    _check_cards(out, source)
    choice_given = out['chose_ai'].notna()
    inconsistent = choice_given & (out['chose_ai'] != (out['chosen_kind'] == 'ai').astype(float))
    if inconsistent.any():
        raise ExportError(f'{source}: chose_ai disagrees with chosen_kind at {_rows(inconsistent)}')
    timed_out_with_choice = (out['choice_timed_out'] == 1) & choice_given
    if timed_out_with_choice.any():
        raise ExportError(
            f'{source}: choice_timed_out=1 but a choice is recorded at {_rows(timed_out_with_choice)}'
        )
    duplicated = out.duplicated(['session_code', 'selector_id', 'round'])
    if duplicated.any():
        raise ExportError(f'{source}: the same selector and round appear twice at {_rows(duplicated)}')

    out['group_key'] = out['session_code'] + ':' + out['group_id'].astype(int).astype(str)
    out['no_choice'] = ~choice_given
    received = out['amount_received_by_candidate']
    out['return_share'] = np.where(choice_given & (received > 0), out['amount_returned'] / received, np.nan)
    out['excluded_from_fit'] = out['no_choice']
    return out.reset_index(drop=True)


def _check_cards(out: pd.DataFrame, source: str) -> None:
    """Per-card lists must agree with n_candidates_offered and with each other."""
    n = out['n_candidates_offered'].astype(int)
    kinds = split_cards(out['offered_kinds'])
    lengths = kinds.map(len)
    wrong = lengths != n
    if wrong.any():
        raise ExportError(
            f'{source}: offered_kinds must list one kind per offered candidate (n_candidates_offered); '
            f'mismatch at {_rows(wrong)}'
        )
    bad_kind = kinds.map(lambda ks: any(k not in KINDS for k in ks))
    if bad_kind.any():
        raise ExportError(f"{source}: offered_kinds may hold only 'ai'/'human'; see {_rows(bad_kind)}")
    n_ai = kinds.map(lambda ks: ks.count('ai'))
    wrong_ai = n_ai != out['n_ai_offered'].astype(int)
    if wrong_ai.any():
        raise ExportError(f'{source}: n_ai_offered disagrees with offered_kinds at {_rows(wrong_ai)}')
    badges = out['offered_badges'].map(lambda s: s.split(';'))
    # A hidden treatment writes n empty badges joined by ';' (n-1 separators), or one empty cell.
    wrong_badges = (badges.map(len) != n) & (out['offered_badges'].str.strip('; ') != '')
    if wrong_badges.any():
        raise ExportError(f'{source}: offered_badges must have one entry per card; see {_rows(wrong_badges)}')
    bad_badge = badges.map(lambda bs: any(b not in ('AI', 'Human', '') for b in bs))
    if bad_badge.any():
        raise ExportError(f"{source}: offered_badges may hold only 'AI', 'Human' or empty; see {_rows(bad_badge)}")
    position = out['chosen_position']
    out_of_range = position.notna() & (position > n)
    if out_of_range.any():
        raise ExportError(f'{source}: chosen_position is beyond the offered cards at {_rows(out_of_range)}')
    chosen = position.notna()
    kind_at_position = [
        ks[int(p) - 1] if c else '' for ks, p, c in zip(kinds, position.fillna(1), chosen)
    ]
    mismatch = chosen & (pd.Series(kind_at_position, index=out.index) != out['chosen_kind'])
    if mismatch.any():
        raise ExportError(
            f'{source}: chosen_kind is not the kind of the card at chosen_position; see {_rows(mismatch)}'
        )
    guesses = split_cards(out['belief_guesses'])
    guessed = guesses.map(len) > 0
    bad_guess = guessed & ((guesses.map(len) != n) | guesses.map(lambda gs: any(g not in KINDS for g in gs)))
    if bad_guess.any():
        raise ExportError(
            f"{source}: belief_guesses must hold 'ai'/'human' for each offered card; see {_rows(bad_guess)}"
        )
    messages = out['offered_messages_json']
    for i, text in enumerate(messages):
        if text.strip() == '':
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ExportError(f'{source}: offered_messages_json is not valid JSON at line {i + 2}') from None
        if not isinstance(value, list):
            raise ExportError(f'{source}: offered_messages_json must be a JSON array at line {i + 2}')


def validate_candidates(data: pd.DataFrame, source: str = 'candidates') -> pd.DataFrame:
    """Check and type a candidates export.

    Returns the data with numeric columns as floats and added columns ``group_key``, ``message``
    (decoded from ``message_json``), ``returns_list`` (list of floats) and ``return_share``
    (``amount_returned / amount_received``, NaN when nobody chose the candidate).
    """
    _require_columns(data, 'candidates', source)
    if data.empty:
        raise ExportError(f'{source}: the export has a header but no candidate rows')
    out = data.copy()
    out['treatment'] = _check_choice(out, 'treatment', TREATMENTS, source)
    out['kind'] = _check_choice(out, 'kind', KINDS, source)
    out['session_code'] = out['session_code'].astype(str).str.strip()
    out['candidate_id'] = out['candidate_id'].astype(str).str.strip()
    out['group_id'] = _as_number(out, 'group_id', source, integer=True, lower=0)
    out['round'] = _as_number(out, 'round', source, integer=True, lower=1)
    out['message_length'] = _as_number(out, 'message_length', source, integer=True, allow_empty=True, lower=0)
    for column in ('times_chosen', 'amount_received', 'amount_returned'):
        out[column] = _as_number(out, column, source, allow_empty=True, lower=0)
    out['candidate_payoff'] = _as_number(out, 'candidate_payoff', source, allow_empty=True)
    for column in ('active', 'message_timed_out', 'return_timed_out', 'message_fallback', 'return_fallback',
                   'dropped'):
        out[column] = _as_flag(out, column, source, allow_empty=True)
    messages = []
    for i, text in enumerate(out['message_json'].astype(str)):
        if text.strip() == '':
            messages.append('')
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ExportError(f'{source}: message_json is not a JSON string literal at line {i + 2}') from None
        if not isinstance(value, str):
            raise ExportError(f'{source}: message_json must be a JSON string at line {i + 2}')
        messages.append(value)
    out['message'] = messages
    try:
        out['returns_list'] = split_cards(out['returns']).map(lambda xs: [float(x) for x in xs])
    except ValueError:
        raise ExportError(f"{source}: column 'returns' must be ';'-separated numbers") from None
    out['group_key'] = out['session_code'] + ':' + out['group_id'].astype(int).astype(str)
    received = out['amount_received']
    out['return_share'] = np.where(received > 0, out['amount_returned'] / received, np.nan)
    return out.reset_index(drop=True)


def validate_trust_game(data: pd.DataFrame, source: str = 'trust_game') -> pd.DataFrame:
    """Check and type a trust_game export.

    Returns the data with numeric columns as floats, ``excluded_from_fit`` (the trustor's send timed
    out) and ``sent_share`` (amount_sent over the largest amount sent in the export, a proxy for the
    endowment, which the export does not carry).
    """
    _require_columns(data, 'trust_game', source)
    if data.empty:
        raise ExportError(f'{source}: the export has a header but no rows')
    out = data.copy()
    out['identity'] = _check_choice(out, 'identity', TREATMENTS, source)
    out['partner_kind'] = _check_choice(out, 'partner_kind', KINDS, source)
    out['round'] = _as_number(out, 'round', source, integer=True, lower=1)
    for column in ('amount_sent', 'multiplier', 'amount_received', 'amount_returned'):
        out[column] = _as_number(out, column, source, allow_empty=True, lower=0)
    for column in ('trustor_payoff', 'trustee_payoff'):
        out[column] = _as_number(out, column, source, allow_empty=True)
    for column in ('send_timed_out', 'return_timed_out', 'return_fallback'):
        out[column] = _as_flag(out, column, source, allow_empty=True)
    out['excluded_from_fit'] = out['send_timed_out'] == 1
    top = out['amount_sent'].max()
    out['sent_share'] = out['amount_sent'] / top if top and top > 0 else np.nan
    return out.reset_index(drop=True)


AI_CALL_DECISIONS = ('message', 'return', 'choice')


def validate_ai_calls(data: pd.DataFrame, source: str = 'ai_calls') -> pd.DataFrame:
    """Check and type an AI-calls export (either app's custom_export_ai_calls, or the population engine's
    ai_calls.csv; one row per AI decision).

    Returns the data with ``round``, ``latency_ms``, ``prompt_tokens``, ``completion_tokens`` as floats
    (tokens NaN where the endpoint reported none), ``fallback`` as 1.0/0.0 and ``decision`` checked against
    :data:`AI_CALL_DECISIONS`. A fallback row must say why (``fallback_reason``).
    """
    _require_columns(data, 'ai_calls', source)
    if data.empty:
        raise ExportError(f'{source}: the export has a header but no rows')
    out = data.copy()
    for column in (c for c in _ADDED_LATER['ai_calls'] if c not in out.columns):
        out[column] = ''
    out['decision'] = _check_choice(out, 'decision', AI_CALL_DECISIONS, source)
    out['round'] = _as_number(out, 'round', source, integer=True, lower=1)
    out['latency_ms'] = _as_number(out, 'latency_ms', source, allow_empty=True, lower=0)
    for column in ('prompt_tokens', 'completion_tokens'):
        out[column] = _as_number(out, column, source, integer=True, allow_empty=True, lower=0)
    out['fallback'] = _as_flag(out, 'fallback', source)
    unexplained = (out['fallback'] == 1) & _blank(out['fallback_reason'])
    if unexplained.any():
        raise ExportError(f'{source}: column \'fallback_reason\' is empty where fallback is 1, at {_rows(unexplained)}')
    for column in ('session_code', 'group_id', 'candidate_id', 'policy', 'model', 'fallback_reason'):
        out[column] = out[column].astype(str).str.strip()
    return out.reset_index(drop=True)


def load_ai_calls(path) -> pd.DataFrame:
    """Read and validate an AI-calls export; see :func:`validate_ai_calls`."""
    return _load(path, 'ai_calls')


_VALIDATORS = {
    'decisions': validate_decisions,
    'candidates': validate_candidates,
    'trust_game': validate_trust_game,
    'ai_calls': validate_ai_calls,
}


def exclusion_summary(decisions: pd.DataFrame) -> pd.DataFrame:
    """Counts of decisions kept and left out of the fits, per treatment.

    Returns
    -------
    DataFrame with columns ``treatment``, ``n_decisions``, ``n_choice_timed_out``,
    ``n_no_choice`` (timed out or empty chose_ai), ``n_return_timed_out``, ``n_used_in_fits``.
    """
    grouped = decisions.groupby('treatment', sort=True)
    table = pd.DataFrame({
        'n_decisions': grouped.size(),
        'n_choice_timed_out': grouped['choice_timed_out'].sum().astype(int),
        'n_no_choice': grouped['no_choice'].sum().astype(int),
        'n_return_timed_out': grouped['return_timed_out'].sum().astype(int),
        'n_used_in_fits': grouped['excluded_from_fit'].apply(lambda s: int((~s).sum())),
    }).reset_index()
    return table


def fit_sample(decisions: pd.DataFrame) -> pd.DataFrame:
    """The decisions a fit uses: those with a choice (``excluded_from_fit`` marks the others: a timed-out
    choice page has no choice to fit; :func:`exclusion_summary` counts them)."""
    return decisions[~decisions['excluded_from_fit']]


def write_export(data: pd.DataFrame, path, columns=None) -> None:
    """Write an export as oTree does: csv module, header first, empty cells for missing values.

    Floats that hold whole numbers are written without '.0' (oTree writes integers).
    """
    columns = list(columns if columns is not None else data.columns)

    def cell(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ''
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        if isinstance(value, np.integer):
            return int(value)
        return value

    with open(path, 'w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in data[columns].itertuples(index=False, name=None):
            writer.writerow([cell(v) for v in row])
