"""What an AI partner sees (GameView) and what it decides (AIDecision).

Both are plain dataclasses so the oTree apps, the analysis and the tests can build and store them
without importing anything else from this package.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from game_logic.session_config import IDENTITIES

ROLES = ('candidate', 'trustee')  # candidate: partner_selection; trustee: trust_game
BADGES = ('AI', 'Human', '')  # '' = no badge (hidden identity)
DECISIONS = ('message', 'return')


@dataclass(frozen=True)
class GameView:
    """The game as the AI partner's seat sees it: what a human in that role would see, nothing more.

    history holds the partner's OWN past rounds only, as dicts with keys among
    round, times_chosen, sent, received, returned (missing keys are simply not shown).
    """

    role: str
    round_number: int
    num_rounds: int
    endowment: int
    multiplier: int
    max_message_length: int = 200
    identity: str = 'disclosed'
    shown_as: str = 'AI'
    history: tuple = field(default_factory=tuple)

    def __post_init__(self):
        problems = []
        if self.role not in ROLES:
            problems.append(f"role must be one of {ROLES}, got {self.role!r}")
        if self.identity not in IDENTITIES:
            problems.append(f"identity must be one of {IDENTITIES}, got {self.identity!r}")
        if self.shown_as not in BADGES:
            problems.append(f"shown_as must be one of {BADGES}, got {self.shown_as!r}")
        for name in ('round_number', 'num_rounds', 'endowment', 'multiplier', 'max_message_length'):
            value = getattr(self, name)
            if not _is_int(value) or value < (0 if name == 'endowment' else 1):
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if _is_int(self.round_number) and _is_int(self.num_rounds) and self.round_number > self.num_rounds:
            problems.append(f"round_number {self.round_number} is beyond num_rounds {self.num_rounds}")
        history = self.history
        if history is None:
            history = ()
        if not all(isinstance(row, dict) for row in history):
            problems.append("history must be a list of dicts (the partner's own past rounds)")
        if problems:
            raise ValueError("GameView: " + "; ".join(problems))
        # A tuple of copies keeps the view hashable-ish and safe from later mutation by the caller.
        object.__setattr__(self, 'history', tuple(dict(row) for row in history))


@dataclass
class AIDecision:
    """One AI decision, as stored in the data (one row per AI call).

    value: str for decision 'message', int for decision 'return'.
    policy: the partner's configured policy; fallback=True means value came from the scripted
    preset because the configured policy failed (fallback_reason says why).
    """

    decision: str
    value: Any
    policy: str
    model: str
    endpoint_host: str = ''
    prompt: str = ''
    raw_reply: str = ''
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    fallback: bool = False
    fallback_reason: str = ''

    def as_row(self) -> dict:
        """The decision as a flat dict with exactly the dataclass's field names (for exports)."""
        return dataclasses.asdict(self)


AI_DECISION_COLUMNS = tuple(f.name for f in dataclasses.fields(AIDecision))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
