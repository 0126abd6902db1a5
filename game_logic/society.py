"""Pure rules of a partner-selection mini-society: roles, groups, treatments, cards, beliefs, dropouts.

Nothing here touches oTree, so every rule is unit-tested on its own (tests/test_society.py).
"""
import random
from typing import Dict, List, Sequence

from .session_config import ConfigError

KINDS = ('ai', 'human')
# Letters that read unambiguously on a card; O/I/Q/L are left out (they look like digits/each other).
LABEL_LETTERS = 'ABCDEFGHJKMNPRSTUVWXYZ'


def treatment_for_group(group_index: int, treatments: Sequence[str]) -> str:
    """Rotation (group 1 gets the first treatment, …) so treatments get equal numbers of groups."""
    return treatments[(group_index - 1) % len(treatments)]


def split_into_groups(participant_ids: Sequence[int], group_size: int) -> List[List[int]]:
    """Consecutive chunks of `group_size`; a remainder becomes a last, smaller group (flagged by the caller)."""
    if group_size < 1:
        raise ConfigError('a group needs at least one participant (num_selectors + num_human_candidates)')
    return [list(participant_ids[i:i + group_size]) for i in range(0, len(participant_ids), group_size)]


def assign_roles(group_size: int, num_selectors: int) -> List[str]:
    """Role per position in the group: selectors first, so a short group still has someone choosing."""
    return ['selector' if i < num_selectors else 'candidate' for i in range(group_size)]


def candidate_ids(num_human: int, num_ai: int) -> Dict[str, List[str]]:
    """Stable ids within a group: H1.. for humans, A1.. for AI (never shown to participants)."""
    return dict(human=[f'H{i}' for i in range(1, num_human + 1)], ai=[f'A{i}' for i in range(1, num_ai + 1)])


def kind_of(candidate_id: str) -> str:
    return 'ai' if candidate_id.startswith('A') else 'human'


def badge_for(kind: str, identity: str) -> str:
    """The badge a selector sees: the truth when disclosed, the opposite when false_label, none when hidden."""
    if identity == 'hidden':
        return ''
    if identity == 'false_label':
        kind = 'human' if kind == 'ai' else 'ai'
    return 'AI' if kind == 'ai' else 'Human'


def draw_display_labels(ids: Sequence[str], rng: random.Random) -> Dict[str, str]:
    """Neutral card labels ('Candidate K'); drawn afresh per round unless labels are persistent."""
    if len(ids) > len(LABEL_LETTERS):
        raise ConfigError(f'at most {len(LABEL_LETTERS)} candidates per group')
    letters = rng.sample(LABEL_LETTERS, len(ids))
    return dict(zip(ids, letters))


def card_order(ids: Sequence[str], rng: random.Random) -> List[str]:
    """A fresh random order of the cards for one selector in one round."""
    order = list(ids)
    rng.shuffle(order)
    return order


def score_beliefs(guesses: Sequence[str], kinds: Sequence[str]) -> int:
    """Correct 'is this an AI?' guesses; an empty guess scores nothing."""
    return sum(1 for guess, kind in zip(guesses, kinds) if guess and guess == kind)


def update_timeout_streak(streak: int, timed_out: bool) -> int:
    """Consecutive timed-out decisions of a human candidate; any answered decision resets it."""
    return streak + 1 if timed_out else 0


def is_dropped(streak: int, limit: int) -> bool:
    """A human candidate whose streak reaches `limit` leaves the candidate pool for later rounds."""
    return limit > 0 and streak >= limit


def clean_external_id(value: str, max_length: int = 64) -> str:
    """A recruitment platform's id (Prolific STUDY_ID / SESSION_ID) as stored: letters, digits, '-' and '_'
    only, at most `max_length`; anything else (an edited URL) is dropped rather than stored or shown."""
    return ''.join(ch for ch in (value or '') if ch.isascii() and (ch.isalnum() or ch in '-_'))[:max_length]
