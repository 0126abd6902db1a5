"""Custom-export plumbing: rows are dicts keyed by the export schema (game_logic.export_schema)."""
from game_logic import export_schema, session_config

from .config import config_of


def schema_table(columns: list, rows):
    """oTree's custom_export shape (header, then lists) from dict rows; a row whose keys are not exactly
    the schema's columns is a bug in the export and fails loudly instead of shifting cells."""
    yield list(columns)
    for row in rows:
        if set(row) != set(columns):
            missing, extra = sorted(set(columns) - set(row)), sorted(set(row) - set(columns))
            raise KeyError(f'export row does not match the schema: missing {missing}, extra {extra}')
        yield [row[column] for column in columns]


def played_groups(players) -> list:
    """The groups of played rounds (num_rounds), in session, round, group order."""
    groups = {}
    for p in players:
        if p.round_number <= config_of(p).num_rounds:
            groups[p.group.id] = p.group
    return sorted(groups.values(), key=lambda g: (g.session.code, g.round_number, g.id_in_subsession))


def flag(value) -> int:
    """A boolean as the 0/1 cell the codebook promises."""
    return int(bool(value))


# --- configuration in the data: every row carries config_name and config_id; one config row per session ---
_CONFIG_CELLS = {}


def config_values(obj) -> dict:
    """Every session-config field's value (typed, defaults filled in) of obj's session."""
    config = config_of(obj)
    return {f.name: getattr(config, f.name) for f in session_config.FIELDS}


def config_cells(obj) -> dict:
    """config_name and config_id of obj's (a player's, group's) session, for every export row."""
    session = obj.session
    cells = _CONFIG_CELLS.get(session.code)
    if cells is None:
        cells = _CONFIG_CELLS[session.code] = dict(
            config_name=session.config.get('name', ''), config_id=export_schema.config_id(config_values(obj)))
    return dict(cells)


def config_rows(players):
    """`custom_export_config`: one row per session of the given players, every field's value (booleans 1/0)."""
    seen = {}
    for p in players:
        if p.session.code not in seen:
            seen[p.session.code] = p
    for code in sorted(seen):
        p = seen[code]
        values = {name: flag(value) if isinstance(value, bool) else value for name, value in config_values(p).items()}
        yield dict(session_code=code, **config_cells(p), **values)


def custom_export_config(players):
    """Configuration: one row per session with its config name, config id and every session-config field."""
    return schema_table(export_schema.CONFIG_COLUMNS, config_rows(players))
