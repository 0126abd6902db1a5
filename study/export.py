"""Custom-export plumbing: rows are dicts keyed by the export schema (game_logic.export_schema)."""
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
