"""AI selectors: selector seats of partner_selection played by the server (independent of oTree).

An AI selector sees what a human selector's pages show (`SelectorView`: the rules, the round's cards with
their letters, badges and messages, its own history table) and nothing computed from a candidate's true
kind: the view has no candidate ids and no kinds. It makes one decision per round, `choice`: a card
letter, the amount sent and, where beliefs are elicited, a guess per card. Policies:

- `random`: a card drawn uniformly;
- `learner`: a learning rule of `ai_partners.learning` (Rescorla–Wagner or EWA, the rules
  `analysis.learning_models` fits), its values learned per *perceived* kind: the badge where there is
  one, else a message longer than `perceive_ai_above` characters reads as AI. Its state is replayed from
  the seat's own past rounds each time (`SelectorView.past_rounds`: the cards it was shown, its choice,
  what came back), so nothing lives in memory between rounds;
- `llm`: any OpenAI-compatible endpoint through `ai_partners.llm`'s client; its reply
  `{"card": ..., "amount": ..., "beliefs": {...}, "reason": ...}` is validated with extra fields forbidden,
  and every fault gives the `fallback` policy's choice, flagged with a reason.

random and learner send the whole endowment and guess the perceived kinds. A decision is an `AIDecision`
with `decision='choice'` and a dict value (`card`, `amount`, `beliefs`, `reason`), so the broker runs it in
the background and the apps store it as any AI call.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from . import prompting
from .config import PartnerSettings
from .decision import AIDecision
from .learning import AI, DEFAULT_Q0, HUMAN, MODELS, card_log_probabilities
from .scripted import decision_rng

log = logging.getLogger('ai_partners')

SELECTOR_POLICIES = ('random', 'learner', 'llm')
FALLBACK_POLICIES = ('random', 'learner')
REASON_LIMIT = 500  # characters of the LLM's reason kept (longer is a schema fault)
BELIEFS = ('ai', 'human')


# --- what the seat sees ------------------------------------------------------------------------

@dataclass(frozen=True)
class SelectorCard:
    """One card as the selector's page shows it: the letter, the badge ('' = none), the message (raw)."""

    label: str
    badge: str
    message: str


@dataclass(frozen=True)
class PastRound:
    """One earlier round of this seat, as its pages showed it then: its cards, the letter it chose ('' =
    none), what it sent and got back."""

    round_number: int
    cards: tuple
    chosen_label: str
    sent: int
    returned: int


@dataclass(frozen=True)
class SelectorView:
    """A selector seat's round: what a human selector's Instructions and Choose pages show, nothing more.

    `identity_shown` is whether cards carry badges (the pages say no more about the treatment: a false
    label reads like a true one). `history` is the page's table (rows with round, label, badge, sent,
    returned, timed_out; empty when `show_history` is off), `past_rounds` what the seat saw in its
    earlier rounds (the learner's memory).
    """

    round_number: int
    num_rounds: int
    endowment: int
    multiplier: int
    max_message_length: int
    num_selectors: int
    num_human: int
    num_ai: int
    ai_description: str
    identity_shown: bool
    selector_chooses_amount: bool
    elicit_beliefs: bool
    belief_bonus: int
    belief_payment: str
    persistent_labels: bool
    cards: tuple
    history: tuple = ()
    past_rounds: tuple = ()
    candidate_capacity: int = 0  # selectors one candidate can take per round (0: no limit), as the rules say

    def __post_init__(self):
        if not self.cards or not all(isinstance(c, SelectorCard) for c in self.cards):
            raise ValueError('SelectorView: cards must be a non-empty tuple of SelectorCard')
        labels = [c.label for c in self.cards]
        if len(set(labels)) != len(labels):
            raise ValueError(f'SelectorView: card letters must be unique, got {labels}')
        object.__setattr__(self, 'cards', tuple(self.cards))
        object.__setattr__(self, 'history', tuple(dict(row) for row in self.history))
        object.__setattr__(self, 'past_rounds', tuple(self.past_rounds))

    @property
    def labels(self) -> list:
        return [c.label for c in self.cards]


def check_selector_view(view) -> None:
    if not isinstance(view, SelectorView):
        raise TypeError(f'view must be an ai_partners.selectors.SelectorView, got {type(view).__name__}')


# --- the settings of one AI selector -------------------------------------------------------------

@dataclass(frozen=True)
class SelectorSettings:
    """How one AI selector decides: its policy, the learner's rule and parameters (resolved: sampled ones
    drawn), the fallback of an llm selector, and the endpoint settings (llm)."""

    policy: str
    model: str = 'rescorla_wagner'
    params: dict = field(default_factory=dict)
    fallback: str = 'learner'
    perceive_ai_above: int = 80
    ai_seed: int = 0
    llm: PartnerSettings | None = None

    def __post_init__(self):
        if self.policy not in SELECTOR_POLICIES:
            raise ValueError(f'AI selector policy must be one of {SELECTOR_POLICIES}, got {self.policy!r}')
        if self.fallback not in FALLBACK_POLICIES:
            raise ValueError(f'AI selector fallback must be one of {FALLBACK_POLICIES}, got {self.fallback!r}')
        if self.model not in MODELS:
            raise ValueError(f'AI selector model must be one of {tuple(MODELS)}, got {self.model!r}')
        if self.policy == 'llm' and self.llm is None:
            raise ValueError('an llm AI selector needs the endpoint settings (llm=PartnerSettings)')

    @property
    def label(self) -> str:
        """The policy as the exports name it: random, learner:<model>, llm:<model>."""
        if self.policy == 'learner':
            return f'learner:{self.model}'
        if self.policy == 'llm':
            return f'llm:{self.llm.llm_model}'
        return 'random'

    @property
    def params_json(self) -> str:
        """The learner's parameters as used (the policy's, or its fallback's for llm); '' for random."""
        uses_learner = self.policy == 'learner' or (self.policy == 'llm' and self.fallback == 'learner')
        return json.dumps(self.params, sort_keys=True) if uses_learner else ''


def resolve_params(spec: dict, model: str, ai_seed: int, selector_key: str) -> dict:
    """The learner's parameters for one selector: each declared parameter (and q0) given as a number,
    drawn uniformly from a (low, high) pair (seeded by ai_seed and the selector's key, so a restart draws
    the same), or the model's declared start value when missing. Rounded to 6 digits (as exported)."""
    rng = decision_rng(ai_seed, selector_key, 0, 'params')
    declared = dict(MODELS[model]().params)
    out = {}
    for name in [*declared, 'q0']:
        value = spec.get(name, declared[name].init if name in declared else DEFAULT_Q0)
        if isinstance(value, (tuple, list)):
            value = rng.uniform(float(value[0]), float(value[1]))
        out[name] = round(float(value), 6)
    return out


# --- the rules random and learner selectors follow -------------------------------------------------

def perceived_kind(card: SelectorCard, perceive_ai_above: int) -> str:
    """What a selector that reads only its page takes a card for: the badge where there is one, else a
    message longer than perceive_ai_above characters reads as an AI (as population's selectors do)."""
    if card.badge in ('AI', 'Human'):
        return 'ai' if card.badge == 'AI' else 'human'
    return 'ai' if len(card.message) > perceive_ai_above else 'human'


def _kind_codes(cards, threshold) -> np.ndarray:
    return np.array([[AI if perceived_kind(c, threshold) == 'ai' else HUMAN for c in cards]], dtype=np.int8)


def _ai_badges(cards) -> np.ndarray:
    return np.array([[1.0 if c.badge == 'AI' else 0.0 for c in cards]])


def learner_state(model_name: str, theta: dict, view: SelectorView, threshold: int):
    """(model, theta arrays, state) after replaying the seat's past rounds through the model's update:
    a round with a choice and points sent teaches the value of the chosen card's perceived kind the
    return share (returned / received), as analysis.learning_models' likelihood does."""
    q0 = theta.get('q0', DEFAULT_Q0)
    model = MODELS[model_name](q0) if model_name not in ('random', 'static') else MODELS[model_name]()
    arrays = {name: np.array([float(theta.get(name, p.init))]) for name, p in model.params.items()}
    state = model.initial_state(1, arrays)
    for past in view.past_rounds:
        by_label = {c.label: c for c in past.cards}
        if not past.chosen_label or past.sent <= 0 or past.chosen_label not in by_label:
            continue
        kind = AI if perceived_kind(by_label[past.chosen_label], threshold) == 'ai' else HUMAN
        reward = past.returned / (past.sent * view.multiplier)
        state = model.update(state, arrays, np.array([kind]), np.array([reward]), np.array([True]))
    return model, arrays, state


def learner_probabilities(model_name: str, theta: dict, view: SelectorView, threshold: int) -> np.ndarray:
    """The learner's softmax probability of each card of this round (card order)."""
    model, arrays, state = learner_state(model_name, theta, view, threshold)
    kinds = _kind_codes(view.cards, threshold)
    utilities, _ = model.utilities(state, arrays, kinds, _ai_badges(view.cards))
    return np.exp(card_log_probabilities(utilities, kinds))[0]


def draw_index(probabilities, rng) -> int:
    """A card index drawn from the probabilities with a random.Random (one uniform number)."""
    cumulative = np.cumsum(probabilities)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side='right'),
                   len(probabilities) - 1))


def rule_choice(policy: str, settings: SelectorSettings, view: SelectorView, selector_key: str) -> dict:
    """The choice of the random or learner rule: a card drawn (seeded by ai_seed, the selector and the
    round), the whole endowment, and the perceived kinds as belief guesses."""
    rng = decision_rng(settings.ai_seed, selector_key, view.round_number, 'choice')
    if policy == 'learner':
        index = draw_index(learner_probabilities(settings.model, settings.params, view, settings.perceive_ai_above),
                           rng)
    else:
        index = rng.randrange(len(view.cards))
    beliefs = [perceived_kind(c, settings.perceive_ai_above) for c in view.cards] if view.elicit_beliefs else []
    return dict(card=view.cards[index].label, amount=view.endowment, beliefs=beliefs, reason='')


# --- the selectors ----------------------------------------------------------------------------------

class AISelector:
    """One AI selector seat. `decide('choice', view)` -> AIDecision (value: dict card, amount, beliefs,
    reason); `fallback(...)` the fallback policy's choice, flagged (the broker calls it on deadlines)."""

    def __init__(self, settings: SelectorSettings, selector_key: str):
        if not isinstance(selector_key, str) or not selector_key:
            raise ValueError(f'selector_key must be a non-empty string, got {selector_key!r}')
        self.settings = settings
        self.selector_key = selector_key

    @property
    def policy(self) -> str:
        return self.settings.policy

    def decide(self, decision: str, view: SelectorView, **kwargs) -> AIDecision:
        if decision != 'choice':
            raise ValueError(f"an AI selector makes 'choice' decisions, got {decision!r}")
        check_selector_view(view)
        return self.choose(view)

    def choose(self, view: SelectorView) -> AIDecision:
        started = time.perf_counter()
        value = rule_choice(self.policy, self.settings, view, self.selector_key)
        return AIDecision(decision='choice', value=value, policy=self.policy, model=self.settings.label,
                          latency_ms=(time.perf_counter() - started) * 1000)

    def fallback(self, decision: str, view: SelectorView, reason: str, latency_ms: float = 0.0,
                 **kwargs) -> AIDecision:
        log.warning('AI selector %s: choice in round %s fell back to %s (%s)', self.selector_key,
                    view.round_number, self.settings.fallback, reason)
        value = rule_choice(self.settings.fallback, self.settings, view, self.selector_key)
        return AIDecision(decision='choice', value=value, policy=self.policy, model=self.settings.label,
                          latency_ms=latency_ms, fallback=True, fallback_reason=reason)


class LLMSelector(AISelector):
    """An AI selector whose choice comes from the LLM endpoint (ai_partners.llm's client and its faults)."""

    def __init__(self, settings: SelectorSettings, selector_key: str):
        super().__init__(settings, selector_key)
        from .llm import LLMPartner  # the client: request, retries, timeout budget, key handling

        self.client = LLMPartner(settings.llm, selector_key)

    def messages(self, view: SelectorView) -> list:
        return choice_messages(view, self.settings.llm.llm_persona)

    def choose(self, view: SelectorView) -> AIDecision:
        from .llm import RAW_REPLY_LIMIT, ReplyProblem, _CallResult

        started = time.perf_counter()
        messages = self.messages(view)
        try:
            result = self.client.call(messages)
        except Exception as error:  # noqa: BLE001 - an unforeseen client failure must not stop the session
            log.exception('AI selector %s: LLM call failed unexpectedly', self.selector_key)
            result = _CallResult()
            result.failure = f'error:{type(error).__name__}'
            result.raw_reply = self.client.redact(str(error))[:RAW_REPLY_LIMIT]
        row = AIDecision(decision='choice', value=None, policy='llm', model=result.model or self.settings.llm.llm_model,
                         endpoint_host=self.settings.llm.endpoint_host, prompt=prompting.prompt_record(messages),
                         raw_reply=result.raw_reply, prompt_tokens=result.prompt_tokens,
                         completion_tokens=result.completion_tokens)
        reason = result.failure
        if not reason:
            try:
                row.value = parse_choice_reply(result.content, view)
            except ReplyProblem as problem:
                reason = problem.reason
        if reason:
            row.value = rule_choice(self.settings.fallback, self.settings, view, self.selector_key)
            row.fallback, row.fallback_reason = True, reason
            log.warning('AI selector %s: LLM choice in round %s fell back to %s (%s)', self.selector_key,
                        view.round_number, self.settings.fallback, reason)
        row.latency_ms = (time.perf_counter() - started) * 1000
        return row

    def fallback(self, decision, view, reason, latency_ms=0.0, **kwargs) -> AIDecision:
        row = super().fallback(decision, view, reason, latency_ms, **kwargs)
        row.model = self.settings.llm.llm_model
        row.endpoint_host = self.settings.llm.endpoint_host
        row.prompt = prompting.prompt_record(self.messages(view))
        return row


def make_selector(settings: SelectorSettings, selector_key: str) -> AISelector:
    """The AI selector of the settings' policy; selector_key (e.g. f'{session}-g1-S1') seeds its draws."""
    return (LLMSelector if settings.policy == 'llm' else AISelector)(settings, selector_key)


# --- the LLM's prompt and reply ---------------------------------------------------------------------

def parse_choice_reply(text: str, view: SelectorView) -> dict:
    """Reply text -> dict(card, amount, beliefs, reason), or ReplyProblem naming the fault.

    The reply is one JSON object with `card` (a letter on this round's cards), `amount` (a whole number
    0..endowment; only when the selector chooses the amount), `beliefs` (an object with exactly one
    'ai'/'human' per card letter; only when beliefs are elicited) and optionally `reason` (text of at
    most REASON_LIMIT characters); nothing else.
    """
    from .llm import ReplyProblem, extract_json_object

    obj = extract_json_object(text)
    allowed = {'card', 'reason'} | ({'amount'} if view.selector_chooses_amount else set()) \
        | ({'beliefs'} if view.elicit_beliefs else set())
    extra = sorted(set(obj) - allowed)
    if extra:
        raise ReplyProblem(f'schema:extra_field:{extra[0]}')
    for name in sorted(allowed - {'reason'}):
        if name not in obj:
            raise ReplyProblem(f'schema:missing_{name}')
    card = obj['card']
    if not isinstance(card, str):
        raise ReplyProblem('schema:card_not_string')
    card = card.strip()
    if card.lower().startswith('candidate '):
        card = card[len('candidate '):].strip()
    if card not in view.labels:
        raise ReplyProblem('schema:invalid_card')
    amount = view.endowment
    if view.selector_chooses_amount:
        amount = obj['amount']
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ReplyProblem('schema:amount_not_integer')
        if not 0 <= amount <= view.endowment:
            raise ReplyProblem('schema:amount_out_of_range')
    beliefs = []
    if view.elicit_beliefs:
        given = obj['beliefs']
        if not isinstance(given, dict) or set(given) != set(view.labels):
            raise ReplyProblem('schema:beliefs_not_one_per_card')
        beliefs = [given[label].strip().lower() if isinstance(given[label], str) else '' for label in view.labels]
        if any(b not in BELIEFS for b in beliefs):
            raise ReplyProblem('schema:belief_not_ai_or_human')
    reason = obj.get('reason', '')
    if not isinstance(reason, str):
        raise ReplyProblem('schema:reason_not_string')
    if len(reason) > REASON_LIMIT:
        raise ReplyProblem('schema:reason_too_long')
    return dict(card=card, amount=amount, beliefs=beliefs, reason=reason.strip())


def _composition_text(view: SelectorView) -> str:
    # The words of the rules box (partner_selection/rules.html).
    if view.num_human and view.num_ai:
        return (f'{view.num_human} of the candidates are other participants and {view.num_ai} are AI agents '
                f'(each {view.ai_description}).')
    if view.num_human:
        return 'all candidates are other participants.'
    return f'all candidates are AI agents (each {view.ai_description}).'


def rules_values(view: SelectorView, persona: str = '') -> dict:
    amount = (f'The selector sends that candidate any whole number of points from 0 to {view.endowment}.'
              if view.selector_chooses_amount else f'The selector sends that candidate all {view.endowment} '
                                                   'points of the round.')
    beliefs = ''
    if view.elicit_beliefs:
        beliefs = (f'Selectors also guess, for each candidate, whether it is an AI; each correct guess earns '
                   f'{view.belief_bonus} point(s)'
                   + (' in one round drawn at random at the end, whose guesses are paid'
                      if view.belief_payment == 'one_random_round' else '')
                   + '. How many guesses were right is shown only after the last round.')
    return dict(
        persona=persona.strip() or prompting.load_template('persona_default').template,
        num_rounds=view.num_rounds, round_number=view.round_number, num_selectors=view.num_selectors,
        num_candidates=view.num_human + view.num_ai, composition_text=_composition_text(view),
        label_rule_text=('Each candidate carries a label saying "AI" or "Human".' if view.identity_shown
                         else 'You will not be told which candidate is which.'),
        max_message_length=view.max_message_length, amount_rule_text=amount, multiplier=view.multiplier,
        endowment=view.endowment, belief_rule_text=beliefs, capacity_rule_text=_capacity_text(view),
    )


def _capacity_text(view: SelectorView) -> str:
    # The words of the rules box (partner_selection/rules.html); empty without a capacity.
    n = view.candidate_capacity
    if not n:
        return ''
    return (f'A candidate can take at most {n} selector{"s" if n != 1 else ""} per round. When more choose the '
            'same candidate, the choices are taken in a random order; a selector whose candidate is already full '
            'is moved, at random, to one of the other candidates with room, and is told so with the results. ')


def cards_text(view: SelectorView) -> str:
    """One line per card: its letter, its badge as the page shows it, the message as a JSON string."""
    return '\n'.join(
        f'- Candidate {c.label}' + (f' [label: {c.badge}]' if c.badge else '') + ': '
        + json.dumps(c.message, ensure_ascii=False)
        for c in view.cards)


def selector_history_text(view: SelectorView) -> str:
    """The history table of the page, one line per row."""
    if not view.history:
        return '(none yet)' if view.round_number == 1 else '(not shown)'
    lines = []
    for row in view.history:
        if row.get('timed_out'):
            lines.append(f"- Round {row['round']}: no choice (time ran out).")
            continue
        badge = f" (label {row['badge']})" if view.identity_shown and row.get('badge') else ''
        lines.append(f"- Round {row['round']}: Candidate {row['label']}{badge}, you sent {row['sent']}, "
                     f"returned to you {row['returned']}.")
    return '\n'.join(lines)


def reply_form(view: SelectorView) -> str:
    letters = ', '.join(view.labels)
    parts = [f'"card": "<one of {letters}>"']
    if view.selector_chooses_amount:
        parts.append(f'"amount": <whole number from 0 to {view.endowment}>')
    if view.elicit_beliefs:
        parts.append('"beliefs": {' + ', '.join(f'"{label}": "ai" or "human"' for label in view.labels) + '}')
    parts.append('"reason": "<one short sentence>"')
    return '{' + ', '.join(parts) + '}'


def choice_messages(view: SelectorView, persona: str = '') -> list:
    """The chat messages asking an LLM selector for this round's choice."""
    values = rules_values(view, persona)
    values['rules'] = prompting.load_template('rules_selector').substitute(values)
    system = prompting.load_template('system_selector').substitute(values)
    letters = ', '.join(view.labels)
    user = prompting.load_template('choice').substitute(
        values, cards_text=cards_text(view), history_text=selector_history_text(view), letters=letters,
        letters_rule='kept for the whole game' if view.persistent_labels else 'drawn anew each round',
        amount_ask=(f' Decide how many points to send (0 to {view.endowment}).' if view.selector_chooses_amount
                    else f' You send all {view.endowment} points.'),
        beliefs_ask=(' For every card, guess whether the candidate is an AI ("ai") or a human ("human").'
                     if view.elicit_beliefs else ''),
        reply_form=reply_form(view))
    return [dict(role='system', content=system), dict(role='user', content=user)]
