"""One partner-selection round as pure functions on plain data: no oTree, no database, no clock.

The oTree app and the headless population engine both call these, in the order a round runs:

1. round start      `round_candidates` (the pool; dropouts leave it), `display_labels` (card letters)
2. messages are in  `draw_card_order` per selector, then `make_cards`
3. a selector's choice  `choose`, and `score_beliefs` when beliefs are elicited (`elicits_beliefs`)
4. choices are in   `apply_capacity` (with candidate_capacity: full cards' extra selectors moved), then
                    `return_slots` (which selectors each candidate returns to, in what order)
5. returns are in   `settle_round` (selector and candidate payoffs)
6. later pages      `selector_history`, `debrief_rows`; after the last round, `pay_beliefs` (the belief
                    bonus is paid only at the end, never in a round's payoff)

Random streams. Labels and card orders come from `random.Random(<seed string>)` with the seed strings
the app has always used (`labels_seed`, `card_order_seed`), so the same session code, group, participant
and round give the same letters and the same order, and exports of sessions already run stay reproducible.

Candidate order. Wherever the engine lists candidates it uses `sorted(candidate_id)`, a string sort
(A1, A10, A2, …, H1): that is the order the app fed into the label and card-order draws, so changing it
would change every draw from ten candidates of one kind up.

Amounts are checked with game_logic.payoffs, which raises InvalidAmount. Text is returned raw: escaping
for HTML is the app's job.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from . import society
from .payoffs import trust_outcome, validate_sent
from .session_config import BELIEF_PAYMENTS, UNDISCLOSED_IDENTITIES

__all__ = [
    'UNDISCLOSED_TREATMENTS',
    'RoundRules',
    'HumanCandidateSeat',
    'Candidate',
    'Card',
    'Choice',
    'BeliefScore',
    'ReturnSlot',
    'CandidateSlots',
    'Return',
    'SelectorOutcome',
    'CandidateOutcome',
    'RoundOutcome',
    'SelectorRound',
    'HistoryRow',
    'DebriefRow',
    'round_candidates',
    'labels_seed',
    'display_labels',
    'card_order_seed',
    'draw_card_order',
    'make_cards',
    'choose',
    'elicits_beliefs',
    'score_beliefs',
    'capacity_seed',
    'apply_capacity',
    'return_slots',
    'settle_round',
    'selector_history',
    'debrief_rows',
    'debrief_reveals',
    'BeliefPayment',
    'belief_payment_seed',
    'pay_beliefs',
]

# Treatments in which a card's badge is not the truth: beliefs are elicited and the debrief reveals kinds.
UNDISCLOSED_TREATMENTS = UNDISCLOSED_IDENTITIES


# ---------------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True)
class RoundRules:
    """The session-config values a round's rules read; the caller fills it from its own config."""

    endowment: int  # points each selector holds before sending
    multiplier: int  # what the chosen candidate receives per point sent
    candidate_base_pay: int  # paid to every active candidate, chosen or not
    selector_chooses_amount: bool  # False: every choosing selector sends the whole endowment
    belief_bonus_per_correct: int  # points per correct "is this an AI?" guess
    dropout_after_timeouts: int  # consecutive timed-out decisions that drop a human candidate; 0 = never
    persistent_labels: bool  # True: a candidate keeps its card letter for the whole session
    # True puts the bonus into the round payoff; False leaves it to the caller, which pays it elsewhere.
    # partner_selection uses False and pays at the end (pay_beliefs): a round payoff with the bonus would
    # tell a selector in hidden / false_label which cards were AI.
    belief_bonus_in_round_payoff: bool = True


@dataclass(frozen=True)
class HumanCandidateSeat:
    """A human candidate as the round starts: what the participant's record says before this round."""

    candidate_id: str  # H1, H2, … (society.candidate_ids)
    participant_code: str
    timeout_streak: int  # consecutive timed-out candidate decisions so far (society.update_timeout_streak)
    dropped: bool  # dropped in an earlier round
    excluded: bool  # out of the study (no consent, failed comprehension)


@dataclass(frozen=True)
class Candidate:
    """One candidate, human or AI, in one round."""

    candidate_id: str
    kind: str  # 'human' | 'ai'
    participant_code: str  # '' for an AI candidate
    active: bool  # offered to selectors and paid the base pay this round
    dropped: bool
    newly_dropped: bool  # dropped at the start of this round: the caller marks the participant dropped


@dataclass(frozen=True)
class Card:
    """One candidate as one selector sees it this round."""

    position: int  # 1-based place in this selector's display order
    candidate_id: str
    kind: str  # the truth, never shown: the badge is what is shown
    label: str  # the card letter
    badge: str  # 'AI' | 'Human' | '' (society.badge_for)
    message: str  # raw text, not escaped


@dataclass(frozen=True)
class Choice:
    """A selector's decision on the choice page; no choice (a timeout) is candidate_id '' and nothing sent."""

    selector_code: str
    candidate_id: str
    amount_sent: int
    # The selector's card was full (candidate_capacity): this is the card it was moved to ('' = none had room).
    reassigned: bool = False

    @property
    def made(self) -> bool:
        return bool(self.candidate_id)


@dataclass(frozen=True)
class BeliefScore:
    guesses: tuple[str, ...]  # 'ai' | 'human' | '' per card, in card order
    n_correct: int
    bonus: int  # n_correct × belief_bonus_per_correct

    @property
    def guesses_text(self) -> str:
        """The guesses as the app stores and exports them: ';'-joined in card order."""
        return ';'.join(self.guesses)


@dataclass(frozen=True)
class ReturnSlot:
    """One return decision a chosen candidate owes: to this selector, out of this amount."""

    selector_code: str
    amount_sent: int
    amount_received: int  # amount_sent × multiplier, the most that can be returned


@dataclass(frozen=True)
class CandidateSlots:
    """Who chose one candidate this round, in the order the choices were listed."""

    candidate_id: str
    slots: tuple[ReturnSlot, ...]

    @property
    def times_chosen(self) -> int:
        return len(self.slots)

    @property
    def amount_received(self) -> int:
        return sum(slot.amount_received for slot in self.slots)


@dataclass(frozen=True)
class Return:
    """A candidate's return to one selector. timed_out: the decision was not made in time (a human's page
    timed out, an AI call passed its deadline); fallback: an AI decision was replaced by its fallback."""

    value: int
    timed_out: bool = False
    fallback: bool = False


@dataclass(frozen=True)
class SelectorOutcome:
    selector_code: str
    candidate_id: str  # '' when the selector made no choice
    amount_sent: int
    amount_returned: int
    return_timed_out: bool
    return_fallback: bool
    belief_bonus: int  # earned this round, whether or not it is in `payoff`
    payoff: int  # endowment − sent + returned (+ belief_bonus when rules.belief_bonus_in_round_payoff)


@dataclass(frozen=True)
class CandidateOutcome:
    candidate_id: str
    active: bool
    times_chosen: int
    amount_received: int
    amount_returned: int
    returns: str  # each return, ';'-joined in slot order ('' when not chosen)
    return_timed_out: bool  # any of its returns timed out
    return_fallback: bool  # any of its returns was an AI fallback
    payoff: int  # base pay (if active) + received − returned


@dataclass(frozen=True)
class RoundOutcome:
    selectors: Mapping[str, SelectorOutcome]  # selector code -> SelectorOutcome, in the order the choices were given
    candidates: Mapping[str, CandidateOutcome]  # candidate id -> CandidateOutcome, in candidate order


@dataclass(frozen=True)
class SelectorRound:
    """What one selector's record says about one past round: the input of history and debrief."""

    round_number: int
    treatment: str
    labels: Mapping[str, str]  # candidate id -> card letter this selector was shown that round
    candidate_id: str  # '' when the selector made no choice
    amount_sent: int
    amount_returned: int


@dataclass(frozen=True)
class HistoryRow:
    round: int
    label: str  # '—' when there was no choice
    badge: str
    sent: int
    returned: int
    timed_out: bool  # no choice that round (only a timeout leaves a selector without one)


@dataclass(frozen=True)
class DebriefRow:
    round: int
    label: str
    kind: str  # the truth: 'ai' | 'human'
    badge: str  # what the card said ('' in hidden)


# ---------------------------------------------------------------------------------------------------
# 1. Round start


def round_candidates(
    humans: Sequence[HumanCandidateSeat], num_ai: int, rules: RoundRules
) -> tuple[Candidate, ...]:
    """The round's candidates, human and AI, as a tuple of Candidate in candidate order.

    A human candidate already dropped stays dropped; one whose timeout streak has reached
    `rules.dropout_after_timeouts` is dropped now (newly_dropped). Active = neither excluded nor
    dropped. AI candidates A1..A{num_ai} are always active.
    """
    candidates = []
    for seat in humans:
        newly_dropped = not seat.dropped and society.is_dropped(seat.timeout_streak, rules.dropout_after_timeouts)
        dropped = seat.dropped or newly_dropped
        candidates.append(Candidate(
            candidate_id=seat.candidate_id,
            kind='human',
            participant_code=seat.participant_code,
            active=not seat.excluded and not dropped,
            dropped=dropped,
            newly_dropped=newly_dropped,
        ))
    for cid in society.candidate_ids(0, num_ai)['ai']:
        candidates.append(Candidate(cid, 'ai', '', active=True, dropped=False, newly_dropped=False))
    ids = [c.candidate_id for c in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError(f'candidate ids must be unique, got {ids}')
    return tuple(sorted(candidates, key=lambda c: c.candidate_id))


def labels_seed(session_code: str, group_id: int, round_number: int, persistent: bool) -> str:
    """The seed of a group's card letters; without the round when labels persist, so every round redraws
    the same letters."""
    return f'{session_code}-g{group_id}-labels' + ('' if persistent else f'-r{round_number}')


def display_labels(
    candidate_ids: Sequence[str], session_code: str, group_id: int, round_number: int, rules: RoundRules
) -> dict[str, str]:
    """Card letter per candidate id, for every candidate of the group (active or not), so that a letter
    never passes from one candidate to another within a session when labels persist.

    Raises society.ConfigError for more candidates than LABEL_LETTERS has letters (22).
    """
    rng = random.Random(labels_seed(session_code, group_id, round_number, rules.persistent_labels))
    return society.draw_display_labels(sorted(candidate_ids), rng)


# ---------------------------------------------------------------------------------------------------
# 2. Cards


def card_order_seed(session_code: str, participant_code: str, round_number: int) -> str:
    """The seed of one selector's card order in one round."""
    return f'{session_code}-{participant_code}-r{round_number}-order'


def draw_card_order(
    candidates: Sequence[Candidate], session_code: str, participant_code: str, round_number: int
) -> tuple[str, ...]:
    """The active candidates' ids in the order one selector sees them this round."""
    active_ids = sorted(c.candidate_id for c in candidates if c.active)
    rng = random.Random(card_order_seed(session_code, participant_code, round_number))
    return tuple(society.card_order(active_ids, rng))


def make_cards(
    order: Sequence[str], labels: Mapping[str, str], messages: Mapping[str, str], treatment: str
) -> tuple[Card, ...]:
    """The selector's cards (Card) in display order, from the order, the group's letters, each candidate's
    message and the group's treatment (which decides the badge)."""
    missing = [cid for cid in order if cid not in messages or cid not in labels]
    if missing:
        raise ValueError(f'no message or label for offered candidate(s) {missing}')
    return tuple(
        Card(
            position=position,
            candidate_id=cid,
            kind=society.kind_of(cid),
            label=labels[cid],
            badge=society.badge_for(society.kind_of(cid), treatment),
            message=messages[cid],
        )
        for position, cid in enumerate(order, start=1)
    )


# ---------------------------------------------------------------------------------------------------
# 3. A selector's choice


def choose(
    selector_code: str, cards: Sequence[Card], label: Optional[str], amount: Optional[int], rules: RoundRules
) -> Choice:
    """The selector's Choice from the card letter picked (None or '' = no choice, as on a timeout) and the
    amount typed (read only with rules.selector_chooses_amount; else the whole endowment is sent).

    Raises ValueError for a letter not on the selector's cards, InvalidAmount for an amount outside
    0..endowment.
    """
    if not label:
        return Choice(selector_code, '', 0)  # a timed-out form is not a decision: nothing is sent
    by_label = {card.label: card for card in cards}
    if label not in by_label:
        raise ValueError(f'card {label!r} was not offered to selector {selector_code}; offered: {sorted(by_label)}')
    sent = amount if rules.selector_chooses_amount else rules.endowment
    return Choice(selector_code, by_label[label].candidate_id, validate_sent(sent, rules.endowment))


def elicits_beliefs(elicit_beliefs: bool, treatment: str) -> bool:
    """Beliefs are asked only where the badge is not the truth (disclosed cards would make it a quiz)."""
    return bool(elicit_beliefs) and treatment in UNDISCLOSED_TREATMENTS


def score_beliefs(cards: Sequence[Card], guesses: Sequence[Optional[str]], rules: RoundRules) -> BeliefScore:
    """Score one 'is this an AI?' guess per card (in card order; None or '' = no guess, never correct)."""
    if len(guesses) != len(cards):
        raise ValueError(f'one guess per card: {len(cards)} cards, {len(guesses)} guesses')
    guesses = tuple(guess or '' for guess in guesses)
    n_correct = society.score_beliefs(guesses, [card.kind for card in cards])
    return BeliefScore(guesses, n_correct, n_correct * rules.belief_bonus_per_correct)


# ---------------------------------------------------------------------------------------------------
# 4. Choices in: who returns to whom


def capacity_seed(session_code: str, group_id: int, round_number: int) -> str:
    """The seed of a group's capacity draws in one round (the processing order and any moves)."""
    return f'{session_code}-g{group_id}-r{round_number}-capacity'


def apply_capacity(
    choices: Sequence[Choice], offered: Mapping[str, Sequence[str]], capacity: int, seed: str
) -> tuple[Choice, ...]:
    """The choices (same order) with no candidate taking more than `capacity` selectors; 0 = unlimited.

    `offered`: selector code -> the candidate ids of its cards in its display order. Choices are kept in a
    random order of the selectors' places (seeded by `seed`); a selector whose card is already full is moved
    to one of its other cards with room, drawn at random (flagged `reassigned`, the amount unchanged), or to
    no choice when no card has room (then nothing is sent). Kind-blind: the draws read places and card
    orders only, never a candidate's kind or id, so swapping the kinds of two candidates moves the same
    selectors to the same cards.
    """
    if not capacity:
        return tuple(choices)
    rng = random.Random(seed)
    places = list(range(len(choices)))
    rng.shuffle(places)
    taken: dict[str, int] = {}
    result = list(choices)
    for place in places:
        choice = choices[place]
        if not choice.made:
            continue
        if taken.get(choice.candidate_id, 0) < capacity:
            taken[choice.candidate_id] = taken.get(choice.candidate_id, 0) + 1
            continue
        room = [cid for cid in offered[choice.selector_code]
                if cid != choice.candidate_id and taken.get(cid, 0) < capacity]
        if not room:
            result[place] = Choice(choice.selector_code, '', 0, reassigned=True)
            continue
        moved_to = rng.choice(room)
        taken[moved_to] = taken.get(moved_to, 0) + 1
        result[place] = Choice(choice.selector_code, moved_to, choice.amount_sent, reassigned=True)
    return tuple(result)


def return_slots(
    candidates: Sequence[Candidate], choices: Sequence[Choice], rules: RoundRules
) -> dict[str, CandidateSlots]:
    """Candidate id -> CandidateSlots for every candidate (chosen or not), in candidate order.

    A candidate's slots follow the order of `choices` (the app lists its selectors in group order):
    that order numbers the candidate's return decisions and the `returns` column. Choices without a
    candidate take no slot.

    Raises ValueError for two choices by one selector or a choice of a candidate that is not active.
    """
    codes = [choice.selector_code for choice in choices]
    if len(set(codes)) != len(codes):
        raise ValueError(f'one choice per selector, got {codes}')
    active = {c.candidate_id for c in candidates if c.active}
    slots = {c.candidate_id: [] for c in sorted(candidates, key=lambda c: c.candidate_id)}
    for choice in choices:
        if not choice.made:
            continue
        if choice.candidate_id not in active:
            raise ValueError(f'selector {choice.selector_code} chose {choice.candidate_id!r}, not an active candidate')
        slots[choice.candidate_id].append(
            ReturnSlot(choice.selector_code, choice.amount_sent, choice.amount_sent * rules.multiplier)
        )
    return {cid: CandidateSlots(cid, tuple(cid_slots)) for cid, cid_slots in slots.items()}


# ---------------------------------------------------------------------------------------------------
# 5. Returns in: payoffs


def settle_round(
    candidates: Sequence[Candidate],
    choices: Sequence[Choice],
    returns: Mapping[str, Return],
    rules: RoundRules,
    belief_bonuses: Optional[Mapping[str, int]] = None,
) -> RoundOutcome:
    """Pay every selector and candidate of the round.

    In: the round's candidates; every selector's Choice (in group order, as for return_slots); the
    Return for each selector who chose (selector code -> Return); each selector's belief bonus this
    round (selector code -> points, missing = 0).
    Out: RoundOutcome. A selector's payoff is the trust game's sender payoff plus the belief bonus
    (unless rules.belief_bonus_in_round_payoff is False); a selector without a choice keeps the
    endowment. A candidate gets the base pay if active, plus what it received, minus what it returned.

    Raises InvalidAmount for a return outside 0..received (game_logic.payoffs); ValueError for a
    missing return, or a return for a selector who chose nobody.
    """
    belief_bonuses = belief_bonuses or {}
    slots = return_slots(candidates, choices, rules)
    chosen_codes = {choice.selector_code for choice in choices if choice.made}
    missing = [choice.selector_code for choice in choices if choice.made and choice.selector_code not in returns]
    if missing:
        raise ValueError(f'no return for selector(s) {missing}, who chose a candidate')
    extra = sorted(set(returns) - chosen_codes)
    if extra:
        raise ValueError(f'a return for selector(s) {extra}, who chose no candidate')

    selectors = {}
    for choice in choices:
        back = returns[choice.selector_code] if choice.made else Return(0)
        outcome = trust_outcome(rules.endowment, choice.amount_sent, rules.multiplier, back.value)
        bonus = belief_bonuses.get(choice.selector_code, 0)
        selectors[choice.selector_code] = SelectorOutcome(
            selector_code=choice.selector_code,
            candidate_id=choice.candidate_id,
            amount_sent=outcome.sent,
            amount_returned=outcome.returned,
            return_timed_out=back.timed_out,
            return_fallback=back.fallback,
            belief_bonus=bonus,
            payoff=outcome.sender_payoff + (bonus if rules.belief_bonus_in_round_payoff else 0),
        )

    outcomes = {}
    for candidate in sorted(candidates, key=lambda c: c.candidate_id):
        chosen_by = [selectors[slot.selector_code] for slot in slots[candidate.candidate_id].slots]
        received = slots[candidate.candidate_id].amount_received
        returned = sum(s.amount_returned for s in chosen_by)
        base = rules.candidate_base_pay if candidate.active else 0
        outcomes[candidate.candidate_id] = CandidateOutcome(
            candidate_id=candidate.candidate_id,
            active=candidate.active,
            times_chosen=len(chosen_by),
            amount_received=received,
            amount_returned=returned,
            returns=';'.join(str(s.amount_returned) for s in chosen_by),
            return_timed_out=any(s.return_timed_out for s in chosen_by),
            return_fallback=any(s.return_fallback for s in chosen_by),
            payoff=base + received - returned,
        )
    return RoundOutcome(selectors=selectors, candidates=outcomes)


# ---------------------------------------------------------------------------------------------------
# 6. Later pages


def selector_history(past_rounds: Sequence[SelectorRound]) -> tuple[HistoryRow, ...]:
    """The selector's own past partners (HistoryRow per round, in the order given) for the history table:
    the letter and badge it was shown, what it sent and got back. Never the true kind."""
    rows = []
    for past in past_rounds:
        if not past.candidate_id:
            rows.append(HistoryRow(past.round_number, '—', '', 0, 0, timed_out=True))
            continue
        rows.append(HistoryRow(
            round=past.round_number,
            label=past.labels[past.candidate_id],
            badge=society.badge_for(society.kind_of(past.candidate_id), past.treatment),
            sent=past.amount_sent,
            returned=past.amount_returned,
            timed_out=False,
        ))
    return tuple(rows)


def debrief_rows(past_rounds: Sequence[SelectorRound]) -> tuple[DebriefRow, ...]:
    """After the last round: for each round with a choice, the partner's letter, true kind and the badge
    the card showed (DebriefRow). Rounds without a choice are left out."""
    return tuple(
        DebriefRow(
            round=past.round_number,
            label=past.labels[past.candidate_id],
            kind=society.kind_of(past.candidate_id),
            badge=society.badge_for(society.kind_of(past.candidate_id), past.treatment),
        )
        for past in past_rounds
        if past.candidate_id
    )


def debrief_reveals(treatment: str) -> bool:
    """The debrief tells selectors who was an AI only where the cards did not."""
    return treatment in UNDISCLOSED_TREATMENTS


@dataclass(frozen=True)
class BeliefPayment:
    """What a selector's guesses pay, settled once after the last played round."""

    paid_rounds: tuple[int, ...]  # the rounds whose guesses are paid (one, all, or none)
    bonuses: Mapping[int, int]  # round -> points paid for that round's guesses (paid rounds only)

    @property
    def bonus(self) -> int:
        return sum(self.bonuses.values())


def belief_payment_seed(session_code: str, participant_code: str) -> str:
    """The seed of one selector's paid belief round."""
    return f'{session_code}-{participant_code}-belief-round'


def pay_beliefs(
    earned: Mapping[int, int], mode: str, session_code: str, participant_code: str
) -> BeliefPayment:
    """The belief bonus, paid at the end so that no round's feedback or payoff hints at kinds.

    `earned`: round -> bonus earned by that round's guesses, for the rounds with guesses only (a round
    without a choice has none). `mode` 'one_random_round' pays one of those rounds, drawn reproducibly
    from the session and participant codes (the draw never looks at the guesses or the kinds);
    'all_rounds' pays them all. No round with guesses: nothing paid.
    """
    if mode not in BELIEF_PAYMENTS:
        raise ValueError(f'belief payment must be one of {BELIEF_PAYMENTS}, got {mode!r}')
    rounds = sorted(earned)
    if not rounds:
        return BeliefPayment((), {})
    if mode == 'one_random_round':
        rounds = [random.Random(belief_payment_seed(session_code, participant_code)).choice(rounds)]
    return BeliefPayment(tuple(rounds), {r: earned[r] for r in rounds})
