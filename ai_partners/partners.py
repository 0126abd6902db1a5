"""AI partners: one object per AI seat, with the two decisions (write a message, decide a return).

make_partner(config, candidate_key) picks the policy from the session config. Every partner can also
produce its scripted fallback for a decision (used by the LLM policy and by the broker).
"""
from __future__ import annotations

import logging
import time

from . import scripted
from .config import PartnerSettings, read_settings
from .decision import AIDecision, GameView

log = logging.getLogger('ai_partners')


class Partner:
    """Base class: the scripted decisions, seeded per (ai_seed, candidate_key, round, decision, counterpart)."""

    policy = 'scripted'

    def __init__(self, settings: PartnerSettings, candidate_key: str):
        if not isinstance(candidate_key, str) or not candidate_key:
            raise ValueError(f"candidate_key must be a non-empty string, got {candidate_key!r}")
        self.settings = settings
        self.candidate_key = candidate_key
        self.preset = scripted.PRESETS[settings.ai_preset]

    # --- the interface the apps use ---------------------------------------------------------
    def write_message(self, view: GameView) -> AIDecision:
        """The partner's message to the selectors this round (AIDecision with a str value)."""
        raise NotImplementedError

    def decide_return(self, view: GameView, amount_sent: int, amount_received: int,
                      counterpart: str = '') -> AIDecision:
        """How much of amount_received to return to counterpart (AIDecision with an int value)."""
        raise NotImplementedError

    def decide(self, decision: str, view: GameView, **kwargs) -> AIDecision:
        """Dispatch on decision name: 'message' -> write_message, 'return' -> decide_return."""
        if decision == 'message':
            return self.write_message(view, **kwargs)
        if decision == 'return':
            return self.decide_return(view, **kwargs)
        raise ValueError(f"decision must be 'message' or 'return', got {decision!r}")

    # --- the scripted policy, also the fallback of every other policy ------------------------
    def scripted_value(self, decision: str, view: GameView, amount_sent: int = 0, amount_received: int = 0,
                       counterpart: str = ''):
        """The scripted preset's value for this decision (str message or int return)."""
        check_view(view)
        honesty = self.settings.intention_honesty
        if decision == 'message':
            return scripted.seat_message(self.preset, honesty, self.settings.ai_seed, self.candidate_key, view)
        if decision == 'return':
            check_amounts(amount_sent, amount_received)
            return scripted.seat_return(self.preset, honesty, self.settings.ai_seed, self.candidate_key,
                                        view.round_number, counterpart, amount_received)
        raise ValueError(f"decision must be 'message' or 'return', got {decision!r}")

    def intention(self, round_number: int):
        """The round's stated intention (scripted.Intention), or None for a seat that states none."""
        return scripted.seat_intention(self.settings.intention_honesty, self.settings.ai_seed, self.candidate_key,
                                       round_number)

    def fallback(self, decision: str, view: GameView, reason: str, latency_ms: float = 0.0,
                 **kwargs) -> AIDecision:
        """The scripted decision flagged as a fallback with reason (for broker deadlines etc.)."""
        log.warning("AI partner %s: %s decision in round %s fell back to the scripted preset %s (%s)",
                    self.candidate_key, decision, view.round_number, self.preset.name, reason)
        return AIDecision(decision=decision, value=self.scripted_value(decision, view, **kwargs),
                          policy=self.policy, model=self.preset.name, latency_ms=latency_ms,
                          fallback=True, fallback_reason=reason)


class ScriptedPartner(Partner):
    """The scripted policy (see ai_partners.scripted)."""

    policy = 'scripted'

    def write_message(self, view: GameView) -> AIDecision:
        return self._timed('message', view)

    def decide_return(self, view: GameView, amount_sent: int, amount_received: int,
                      counterpart: str = '') -> AIDecision:
        return self._timed('return', view, amount_sent=amount_sent, amount_received=amount_received,
                           counterpart=counterpart)

    def _timed(self, decision, view, **kwargs) -> AIDecision:
        started = time.perf_counter()
        value = self.scripted_value(decision, view, **kwargs)
        return AIDecision(decision=decision, value=value, policy='scripted', model=self.preset.name,
                          latency_ms=(time.perf_counter() - started) * 1000)


def make_partner(config, candidate_key: str) -> Partner:
    """Session config (a dict, or PartnerSettings already read from it) + a stable key for this AI seat
    -> a Partner of the configured policy.

    candidate_key, e.g. f"{session_code}-g{group}-A1", seeds the scripted policy (and the fallback).
    """
    settings = config if isinstance(config, PartnerSettings) else read_settings(config)
    if settings.ai_policy == 'llm':
        from .llm import LLMPartner
        return LLMPartner(settings, candidate_key)
    return ScriptedPartner(settings, candidate_key)


def check_view(view) -> None:
    if not isinstance(view, GameView):
        raise TypeError(f"view must be an ai_partners.GameView, got {type(view).__name__}")


def check_amounts(amount_sent, amount_received) -> None:
    """Raise ValueError unless both amounts are non-negative integers."""
    for name, value in (('amount_sent', amount_sent), ('amount_received', amount_received)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
