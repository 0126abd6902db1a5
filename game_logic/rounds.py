"""The most rounds a session can play: the apps' NUM_ROUNDS, fixed when the server starts.

oTree needs NUM_ROUNDS as a constant, so the session config's `num_rounds` plays a prefix of them.
Every unplayed round still costs server time: when a participant leaves the last played round, oTree
walks each remaining page of each remaining round (loading the player, tallying wait pages), one
participant at a time behind the server's global lock. Measured with PostgreSQL (benchmarks/load_study.py):
about 0.15 s per unplayed partner_selection round and participant. So the bound is kept small and a
study that needs more rounds raises it with the environment variable OTREE_MAX_ROUNDS (restart the
server and run `otree resetdb`, which wipes the database).
"""
import os

DEFAULT_MAX_ROUNDS = 20


def max_rounds(env=os.environ) -> int:
    """OTREE_MAX_ROUNDS if set (a positive integer), else 20."""
    raw = env.get('OTREE_MAX_ROUNDS', '').strip()
    if not raw:
        return DEFAULT_MAX_ROUNDS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f'OTREE_MAX_ROUNDS must be a positive whole number, got {raw!r}')
    return int(raw)


# Session-config accessors shared by both apps (they take any oTree model with .session / .round_number).
def cfg(obj) -> dict:
    """The session config of a player, group or subsession."""
    return obj.session.config


def is_played_round(player) -> bool:
    """Rounds after the config's num_rounds exist (NUM_ROUNDS) but are skipped."""
    return player.round_number <= cfg(player)['num_rounds']


def is_last_round(player) -> bool:
    return player.round_number == cfg(player)['num_rounds']


def page_timeout(player):
    """Decision pages: page_timeout_seconds, 0 = none."""
    return cfg(player)['page_timeout_seconds'] or None


def info_timeout(player):
    """Pages that only inform (instructions, results): info_page_timeout_seconds, 0 = none."""
    return cfg(player)['info_page_timeout_seconds'] or None
