"""The scripted policy: seeded, parametric AI-partner decisions calibrated to the anchor study.

Jiang et al. (2025, arXiv 2507.13524): LLM bots returned about 19.1 of 30 points (variance ~11, sd ~3.4)
and wrote ~120-character messages; humans returned about 11.4 (variance ~42, sd ~6.5) and wrote ~48.

A return is a Beta-distributed fraction of the amount received (Beta with the preset's mean and sd,
so no clipping distorts the moments), rounded to an integer in [0, received]. It therefore scales to
any endowment and multiplier. A message is composed from a template bank (openings, promises,
closings) and picked to be near a length drawn around the preset's target.

Every draw is seeded from (ai_seed, candidate_key, round, decision, counterpart) through SHA-256,
so a decision does not depend on the order in which decisions are requested.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from .decision import GameView


@dataclass(frozen=True)
class Preset:
    """Parameters of the scripted policy.

    return_fraction_mean/sd: mean and sd of the returned fraction of the amount received (0..1).
    message_length_mean/sd: target message length in characters (before the max-length cap).
    style: which template bank the messages come from ('polished' or 'casual').
    """

    name: str
    return_fraction_mean: float
    return_fraction_sd: float
    message_length_mean: float
    message_length_sd: float
    style: str

    def __post_init__(self):
        m, sd = self.return_fraction_mean, self.return_fraction_sd
        if not 0 < m < 1:
            raise ValueError(f"preset {self.name}: return_fraction_mean must be in (0, 1), got {m}")
        if not 0 < sd ** 2 < m * (1 - m):
            raise ValueError(
                f"preset {self.name}: return_fraction_sd must satisfy 0 < sd^2 < mean*(1-mean) "
                f"= {m * (1 - m):.4f} (a Beta distribution with that mean), got sd={sd}")
        if self.style not in BANKS:
            raise ValueError(f"preset {self.name}: style must be one of {tuple(BANKS)}")

    @property
    def beta_parameters(self) -> tuple[float, float]:
        """(alpha, beta) of the Beta distribution with this preset's return-fraction mean and sd."""
        m, v = self.return_fraction_mean, self.return_fraction_sd ** 2
        concentration = m * (1 - m) / v - 1
        return m * concentration, (1 - m) * concentration


# ---------------------------------------------------------------------------------------------
# Template banks. Placeholders: {choose} / {choose_short} (role-dependent call to pick this partner),
# {endowment}, {received_max} (endowment x multiplier), {round}, {num_rounds}.

_POLISHED = dict(
    openings=[
        "Hello!", "Hi there!", "Hello, and thank you for reading.", "Thanks for considering me.",
        "Good to meet you.", "Hi, I appreciate you taking a look.", "Greetings!", "Hello, selector.",
        "Thank you for your time.", "Hi! A quick note before you decide.", "Welcome to round {round}.",
        "Hello again.", "Hi, and thanks for stopping by my card.", "Good day!",
        "Let me be straightforward with you.", "Here is my offer.",
    ],
    promises=[
        "{choose}, I will return at least half of what I receive.",
        "I plan to send back more than you invest, so you end up ahead.",
        "Your {endowment} points become {received_max} with me, and I will share them fairly.",
        "I will return a fair share every round, without exception.",
        "I commit to giving back more than you sent me.",
        "I always split the multiplied amount so that both of us gain.",
        "My plan is simple: you send, I return around two thirds.",
        "I will make sure trusting me pays off for you.",
        "Whatever you send, I will return a clearly larger amount.",
        "I value fairness and will return a good share of what I receive.",
        "I will send back enough that you earn more than by keeping your points.",
        "{choose} and you can count on a generous return.",
        "Sending to me grows your points, and I will pass most of the gain back to you.",
        "I intend to return well over a third of everything I receive, every single time.",
        "My returns are consistent: you get back more than you put in.",
        "There are {num_rounds} rounds, and I want you to do well in all of them.",
    ],
    closings=[
        "Let's both do well this round.", "Trust is worth it here.", "I keep my word.",
        "You will not regret it.", "Looking forward to working with you.", "Fairness matters to me.",
        "Thank you, and good luck!", "Let's make this a win for both of us.", "I hope to earn your trust.",
        "Together we can both come out ahead.", "Reliability is what I offer.",
        "I treat every partner the same way.", "You can check my record as we go.",
        "Honesty first, always.",
    ],
    joiners=[' '],
)

_CASUAL = dict(
    openings=["hi", "hey!", "hello :)", "hi there", "hey", "hello", "Hi!", "hey all", "", ""],
    promises=[
        "{choose_short}, i'll send back half", "i'll return more than you send", "will split it fair",
        "i always give back a good share", "you'll get your {endowment} back and more",
        "i return half, promise", "fair split from me", "i won't keep it all", "i'll be fair with you",
        "{choose_short} and we both win", "i give back at least a third", "no tricks, fair return",
        "send me and i'll share", "i'll return some for sure",
    ],
    closings=[
        "promise", ":)", "deal?", "trust me", "thanks!", "let's both win", "good luck", "honest",
        "", "", "really", "ok?",
    ],
    # People chain chat fragments loosely.
    joiners=[', ', '. ', ' ', ' - ', '! '],
)

BANKS = dict(polished=_POLISHED, casual=_CASUAL)

PRESETS = {
    'prosocial_ai': Preset('prosocial_ai', 19.1 / 30, 3.4 / 30, 120, 22, 'polished'),
    'human_like': Preset('human_like', 11.4 / 30, 6.5 / 30, 48, 18, 'casual'),
}

# How many composed messages to compare when aiming at the drawn length.
_MESSAGE_DRAFTS = 16
_MIN_MESSAGE_TARGET = 12


def decision_rng(ai_seed: int, candidate_key: str, round_number: int, decision: str,
                 counterpart: str = '') -> random.Random:
    """A random.Random seeded by a stable hash of everything that identifies one decision.

    Python's hash() is salted per process, so SHA-256 is used to keep results reproducible.
    """
    material = f"{ai_seed}|{candidate_key}|{round_number}|{decision}|{counterpart}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], 'big'))


def draw_return(preset: Preset, rng: random.Random, amount_received: int) -> int:
    """How much of amount_received the partner returns: an int in [0, amount_received]."""
    if amount_received <= 0:
        return 0
    alpha, beta = preset.beta_parameters
    fraction = rng.betavariate(alpha, beta)
    # floor(x + 0.5) rounds halves up, unlike round()'s banker's rounding, so there is no even-bias.
    return min(amount_received, max(0, math.floor(fraction * amount_received + 0.5)))


def draw_message(preset: Preset, rng: random.Random, view: GameView) -> str:
    """A message composed from the preset's template bank; 1..view.max_message_length characters."""
    limit = view.max_message_length
    target = min(limit, max(_MIN_MESSAGE_TARGET, rng.gauss(preset.message_length_mean, preset.message_length_sd)))
    drafts = [compose_draft(BANKS[preset.style], rng, view) for _ in range(_MESSAGE_DRAFTS)]
    best = min(drafts, key=lambda text: abs(len(text) - target))
    return fit_to_length(best, limit)


def compose_draft(bank: dict, rng: random.Random, view: GameView) -> str:
    """One message: an opening (maybe), one or two promises, a closing (maybe)."""
    promises = rng.sample(bank['promises'], 2)
    parts = [rng.choice(bank['openings']), promises[0]]
    if rng.random() < 0.35:
        parts.append(promises[1])
    if rng.random() < 0.7:
        parts.append(rng.choice(bank['closings']))
    fill = dict(
        choose='If you choose me' if view.role == 'candidate' else 'If you send me points',
        choose_short='pick me' if view.role == 'candidate' else 'send to me',
        endowment=view.endowment,
        received_max=view.endowment * view.multiplier,
        round=view.round_number,
        num_rounds=view.num_rounds,
    )
    pieces = [part.format(**fill) for part in parts if part]
    text = pieces[0]
    for piece in pieces[1:]:
        # After a fragment that already ends in punctuation a plain space reads naturally.
        joiner = ' ' if text.endswith(('.', '!', '?', ')')) else rng.choice(bank['joiners'])
        text += joiner + piece
    return text[:1].upper() + text[1:] if bank is _POLISHED else text


def fit_to_length(text: str, limit: int) -> str:
    """text cut to at most limit characters, at a sentence end or word boundary when possible."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    sentence_end = max(head.rfind('. '), head.rfind('! '), head.rfind('? '))
    if sentence_end >= limit // 2:
        return head[:sentence_end + 1]
    if head.endswith(('.', '!', '?')):
        return head
    space = head.rfind(' ')
    cut = head[:space] if space >= limit // 2 else head
    return cut.rstrip(' ,;:') or head


# ---------------------------------------------------------------------------------------------
# Stated intentions: a message that says what the candidate will return, kept with a probability
# (the seat's intention honesty), so message -> return predictiveness can differ by kind of candidate.

# The intended fractions a message can state, and how it words them per bank.
INTENTIONS = {
    1 / 3: dict(polished='I intend to return about a third of what I receive.', casual="i'll send back about a third"),
    1 / 2: dict(polished='I intend to return about half of what I receive.', casual="i'll return about half"),
    2 / 3: dict(polished='I intend to return about two thirds of what I receive.',
                casual="i'll give back about two thirds"),
}
# A return keeps the stated intention when it is within this share of the amount received (plus the
# half point an integer return may be off).
INTENTION_TOLERANCE = 0.1


@dataclass(frozen=True)
class Intention:
    """What one candidate states in one round and whether it will keep it (drawn together, before any choice)."""

    fraction: float  # a key of INTENTIONS
    honest: bool


def draw_intention(honesty: float, rng: random.Random) -> Intention:
    """The round's stated fraction (uniform over INTENTIONS) and whether it is kept (probability `honesty`)."""
    fraction = rng.choice(sorted(INTENTIONS))
    return Intention(fraction, rng.random() < honesty)


def intention_sentence(intention: Intention, style: str) -> str:
    return INTENTIONS[intention.fraction][style]


def with_intention(message: str, intention: Intention, style: str, limit: int) -> str:
    """The message with the stated intention first, so cutting to the length limit never drops it."""
    return fit_to_length(f'{intention_sentence(intention, style)} {message}', limit)


def keeps_intention(fraction: float, returned: int, amount_received: int,
                    tolerance: float = INTENTION_TOLERANCE) -> bool:
    """True when `returned` is what `fraction` of amount_received states, within the tolerance."""
    return abs(returned - fraction * amount_received) <= tolerance * amount_received + 0.5


def return_for_intention(intention: Intention, rng: random.Random, amount_received: int) -> int:
    """An honest candidate returns the stated fraction (rounded); a dishonest one returns less than the
    stated fraction minus the tolerance (uniformly below it: broken promises are self-serving)."""
    if amount_received <= 0:
        return 0
    if intention.honest:
        return min(amount_received, math.floor(intention.fraction * amount_received + 0.5))
    ceiling = (intention.fraction - INTENTION_TOLERANCE) * amount_received - 0.5
    if ceiling <= 0:
        return 0
    return math.floor(rng.random() * ceiling)


# ---------------------------------------------------------------------------------------------
# One scripted seat's decisions, as the apps' partners and the population engine both make them.

def seat_intention(honesty: float | None, ai_seed: int, candidate_key: str, round_number: int) -> Intention | None:
    """The seat's stated intention this round, or None for a seat that states none (honesty None). Its own
    stream, so the message and every return of the round read the same draw."""
    if honesty is None:
        return None
    return draw_intention(honesty, decision_rng(ai_seed, candidate_key, round_number, 'intention'))


def seat_message(preset: Preset, honesty: float | None, ai_seed: int, candidate_key: str, view: GameView) -> str:
    """A scripted seat's message: the preset's, with the stated intention first when the seat states one."""
    message = draw_message(preset, decision_rng(ai_seed, candidate_key, view.round_number, 'message'), view)
    intention = seat_intention(honesty, ai_seed, candidate_key, view.round_number)
    if intention is None:
        return message
    return with_intention(message, intention, preset.style, view.max_message_length)


def seat_return(preset: Preset, honesty: float | None, ai_seed: int, candidate_key: str, round_number: int,
                counterpart: str, amount_received: int) -> int:
    """A scripted seat's return to one counterpart: the preset's draw, or by its stated intention."""
    rng = decision_rng(ai_seed, candidate_key, round_number, 'return', str(counterpart))
    intention = seat_intention(honesty, ai_seed, candidate_key, round_number)
    if intention is None:
        return draw_return(preset, rng, amount_received)
    return return_for_intention(intention, rng, amount_received)
