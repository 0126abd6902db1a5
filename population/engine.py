"""The headless population engine: partner-selection rounds played by agents, on the app's round rules.

Every round of every group goes through `game_logic.round_engine` in the order the oTree app calls it
(partner_selection/round_flow.py): `round_candidates` → `display_labels` → the candidates' messages →
`draw_card_order` and `make_cards` per selector → `choose` (and `score_beliefs`) → `return_slots` → the
returns → `settle_round`; after the last round `pay_beliefs`. The agents:

* candidates decide with ai_partners' scripted policy (`ai_partners.scripted.draw_message` / `draw_return`,
  seeded by `decision_rng(ai_seed, candidate_key, round, decision, counterpart)` with the app's candidate
  keys `<session>-g<group>-<id>`), AI candidates A1.. with their presets (`ai_presets`, a quality mix), the
  human-like candidates H1.. with `human_preset` (default `human_like`: 11.4 of 30 returned, sd 6.5,
  ~48-character messages); AI seats whose `ai_policies` entry is `llm` decide by the LLM endpoint instead
  (population.llm_agents: the apps' client and prompts, their preset as the fallback);
* selectors choose by a learning model of `ai_partners.learning` (the rules `analysis.learning_models` fits:
  its `initial_state`, `utilities`, `update`, and the softmax `card_log_probabilities`), all selectors of all groups at once with numpy. A
  selector acts on what its page shows: the badge where there is one, else the message (longer than
  `perceive_ai_above` characters reads as AI). Its learned values are per *perceived* kind, and its belief
  guesses (when elicited) are the perceived kinds. It sends the whole endowment. With
  `selector_policy = 'llm'` every selector is an LLM selector seat (ai_partners.selectors), its choice, amount
  and guesses the model's (or its fallback's).

A round's LLM calls run concurrently, step by step (messages, choices, returns), gathered in seat order.

The result holds each round's engine objects; `decisions_frame`, `candidates_frame` and `config_frame` turn
them into the apps' exports (game_logic.export_schema), row for row as partner_selection/exports.py writes
them.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ai_partners import GameView
from ai_partners.scripted import seat_message, seat_return
from ai_partners.learning import AI, DEFAULT_Q0, MODELS, card_log_probabilities
from game_logic import export_schema, round_engine, session_config, society
from game_logic.round_engine import HumanCandidateSeat, Return, RoundRules

from .config import PopulationConfig, check_capacity
from .llm_agents import (LLMCalls, candidate_view, llm_stats, selector_settings, selector_view, timed_out,
                         value_used)

__all__ = ['run', 'Script', 'Result', 'round_rules', 'selector_marks', 'selector_code', 'candidate_key',
           'write_exports']


def selector_marks(config: PopulationConfig) -> dict:
    """The decisions export's selector columns: every selector of a run is an agent, marked as the app marks
    its AI selectors (`random`, `learner:<model>`, `llm:<model>`, the parameters as set)."""
    policy = config.selector_policy
    if policy == 'llm':
        settings = selector_settings(config, 1, 'S1', candidate_key(config, 1, 'S1'), config.base_urls[0])
        return dict(selector_kind='ai', selector_policy=settings.label, selector_params=settings.params_json,
                    choice_fallback=0)
    return dict(selector_kind='ai', selector_policy=policy if policy == 'random' else f'learner:{policy}',
                selector_params=json.dumps(dict(config.selector_params), sort_keys=True), choice_fallback=0)


def round_rules(config: PopulationConfig) -> RoundRules:
    """The round rules from the session config, as partner_selection.round_flow.round_rules builds them."""
    c = config.session
    return RoundRules(
        endowment=c.endowment, multiplier=c.multiplier, candidate_base_pay=c.candidate_base_pay,
        selector_chooses_amount=c.selector_chooses_amount, belief_bonus_per_correct=c.belief_bonus,
        dropout_after_timeouts=c.dropout_after_timeouts, persistent_labels=c.persistent_candidate_labels,
        belief_bonus_in_round_payoff=False,
    )


def selector_code(config: PopulationConfig, group: int, index: int) -> str:
    """The participant code of selector `index` (1-based) of group `group`."""
    return f'{config.session_code}g{group}s{index}'


def candidate_key(config: PopulationConfig, group: int, candidate_id: str) -> str:
    """The app's candidate key (round_flow.candidate_key): it seeds the scripted policy."""
    return f'{config.session_code}-g{group}-{candidate_id}'


@dataclass
class GroupRound:
    """One group's round as the engine played it."""

    group: int
    round: int
    treatment: str
    candidates: tuple  # round_engine.Candidate
    labels: dict
    messages: dict
    composition: str = ''  # the group's AI-candidate mix (session composition_rotation entry)
    picked: dict = field(default_factory=dict)  # selector code -> candidate id picked before the capacity rule
    cards: dict = field(default_factory=dict)  # selector code -> tuple of round_engine.Card
    choices: list = field(default_factory=list)  # round_engine.Choice, group order
    beliefs: dict = field(default_factory=dict)  # selector code -> round_engine.BeliefScore
    choice_timeouts: set = field(default_factory=set)  # selector codes whose choice page timed out
    message_timeouts: set = field(default_factory=set)  # candidate ids whose message page timed out
    message_fallbacks: set = field(default_factory=set)  # candidate ids whose LLM message fell back
    choice_fallbacks: set = field(default_factory=set)  # selector codes whose LLM choice fell back
    outcome: round_engine.RoundOutcome | None = None


@dataclass
class Result:
    """A finished run: the config, every group-round, and each selector's belief payment."""

    config: PopulationConfig
    rounds: list  # GroupRound, round by round, group by group
    belief_payments: dict  # selector code -> round_engine.BeliefPayment
    ai_calls: list = field(default_factory=list)  # AI-calls rows of the LLM agents' calls, in call order

    def ai_calls_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.ai_calls, columns=export_schema.AI_CALL_COLUMNS)

    def llm_stats(self) -> dict:
        return llm_stats(self.ai_calls)

    def decisions_frame(self) -> pd.DataFrame:
        return pd.DataFrame(decision_rows(self), columns=export_schema.DECISION_COLUMNS)

    def candidates_frame(self) -> pd.DataFrame:
        return pd.DataFrame(candidate_rows(self), columns=export_schema.CANDIDATE_COLUMNS)

    def config_frame(self) -> pd.DataFrame:
        return pd.DataFrame([config_row(self.config)], columns=export_schema.CONFIG_COLUMNS)


class Selectors:
    """Every selector of the run as one learning model over numpy arrays (selector order: group by group)."""

    def __init__(self, config: PopulationConfig):
        self.model = MODELS[config.learning_model]()
        declared = self.model.params
        n = config.n_selectors
        params = dict(config.selector_params)
        q0 = float(params.pop('q0', DEFAULT_Q0))
        if config.learning_model not in ('random', 'static'):
            self.model.q0 = q0
        self.theta = {name: np.full(n, float(params.get(name, p.init))) for name, p in declared.items()}
        self.state = self.model.initial_state(n, self.theta)
        self.rng = np.random.default_rng([config.seed, 104729])

    def choose(self, perceived: np.ndarray, ai_badge: np.ndarray) -> np.ndarray:
        """0-based card position per selector, drawn from the model's softmax over its cards."""
        utilities, _ = self.model.utilities(self.state, self.theta, perceived, ai_badge)
        probabilities = np.exp(card_log_probabilities(utilities, perceived))
        cumulative = np.cumsum(probabilities, axis=1)
        draw = self.rng.random(len(perceived))[:, None] * cumulative[:, -1:]
        return np.minimum((cumulative < draw).sum(axis=1), perceived.shape[1] - 1)

    def learn(self, chosen_kind: np.ndarray, reward: np.ndarray, learn: np.ndarray):
        self.state = self.model.update(self.state, self.theta, chosen_kind, reward, learn)


def _views(config: PopulationConfig, round_number: int) -> dict:
    """(treatment, kind) -> the GameView a candidate of that kind gets this round (the scripted policy reads
    the rules and the round; its own history does not change its draws)."""
    c = config.session
    return {
        (t, kind): GameView(role='candidate', round_number=round_number, num_rounds=config.rounds,
                            endowment=c.endowment, multiplier=c.multiplier, max_message_length=c.max_message_length,
                            identity=t, shown_as=society.badge_for(kind, t))
        for t in dict.fromkeys(c.treatment_rotation) for kind in society.KINDS
    }


class Script:
    """Given decisions instead of the agents' own: what `run` plays when it replays a session (e.g. an oTree
    bot session's export, to check that the engine and the app follow the same rules). Every method gets
    what the engine knows at that step and returns the decision; `None` leaves it to the agents."""

    def group_ids(self, config: PopulationConfig):
        """The groups' numbers (default 1..groups)."""
        return None

    def selector_codes(self, group: int):
        """The group's selectors' participant codes, in group order."""
        return None

    def human_seats(self, group: int, round_number: int):
        """The group's human-candidate seats (round_engine.HumanCandidateSeat) at the start of the round."""
        return None

    def message(self, group: int, round_number: int, candidate_id: str):
        return None

    def message_timed_out(self, group: int, round_number: int, candidate_id: str) -> bool:
        """True where the message page timed out (agents never do)."""
        return False

    def choice_timed_out(self, group: int, round_number: int, selector: str) -> bool:
        return False

    def choice(self, group: int, round_number: int, selector: str):
        """(candidate id, amount sent) or ('', 0) for no choice."""
        return None

    def guesses(self, group: int, round_number: int, selector: str, cards):
        return None

    def returned(self, group: int, round_number: int, candidate_id: str, slot):
        """round_engine.Return for one return slot."""
        return None


def run(config: PopulationConfig, script: Script | None = None) -> Result:
    """Play every round of every group; see the module docstring. With `script`, its decisions replace the
    agents' wherever it gives one (the selectors then learn nothing from them). LLM agents (`ai_policies`,
    `selector_policy = 'llm'`) make a round's calls of each step concurrently (population.llm_agents)."""
    check_capacity(config)
    llm = LLMCalls(config) if config.uses_llm else None
    try:
        return _play(config, script or Script(), llm)
    finally:
        if llm is not None:
            llm.close()


def _play(config: PopulationConfig, script: Script, llm: LLMCalls | None) -> Result:
    c = config.session
    rules = round_rules(config)
    presets = config.presets
    n_human, n_ai, per_group = c.num_human_candidates, c.num_ai_candidates, config.selectors_per_group
    groups = list(script.group_ids(config) or range(1, config.groups + 1))
    treatment = {g: society.treatment_for_group(i, c.treatment_rotation) for i, g in enumerate(groups, start=1)}
    codes = {g: list(script.selector_codes(g) or [selector_code(config, g, i) for i in range(1, per_group + 1)])
             for g in groups}
    # The AI-candidate mix rotates over groups with the same index as the treatment (as the app's grouping).
    composition = {g: society.treatment_for_group(i, c.composition_rotation) for i, g in enumerate(groups, start=1)}
    human_ids = society.candidate_ids(n_human, n_ai)['human']
    seats = {g: [HumanCandidateSeat(cid, f'{config.session_code}g{g}{cid}', 0, False, False) for cid in human_ids]
             for g in groups}
    ai_ids = society.candidate_ids(0, n_ai)['ai']
    # Per (group, candidate id): its scripted preset (an llm seat's fallback) and its intention honesty.
    preset_of, honesty_of, llm_candidates = {}, {}, set()
    for g in groups:
        preset_of.update({(g, cid): presets[config.human_preset] for cid in human_ids})
        for i, (cid, (name, honesty)) in enumerate(zip(ai_ids, config.ai_entries(composition[g])), start=1):
            preset_of[g, cid] = presets[config.ai_preset_of(i) if name == 'llm' else name]  # llm: its fallback
            honesty_of[g, cid] = honesty
            if name == 'llm':
                llm_candidates.add((g, cid))
    llm_selectors = config.selector_policy == 'llm'
    keys = {(g, cid): candidate_key(config, g, cid) for g, cid in preset_of}
    n_selectors = sum(len(v) for v in codes.values())
    selectors = Selectors(dataclasses.replace(config, groups=1, selectors_per_group=n_selectors))
    played, earned = [], {code: {} for g in groups for code in codes[g]}
    threshold = config.perceive_ai_above
    # What an LLM agent's view holds of its own past: a candidate's rounds (the app's ai_view history), a
    # selector's cards, choices and outcomes (its history table and memory).
    own_rounds = {key: [] for key in llm_candidates}
    seat_rounds = {code: [] for g in groups for code in codes[g]} if llm_selectors else {}

    def message(g, rnd, cand, views):
        given = script.message(g, rnd, cand.candidate_id)
        if given is not None:
            return given
        cid = cand.candidate_id
        return seat_message(preset_of[g, cid], honesty_of.get((g, cid)), c.ai_seed, keys[g, cid],
                            views[treatment[g], cand.kind])

    def returned(g, rnd, cid, slot):
        given = script.returned(g, rnd, cid, slot)
        if given is not None:
            return given
        return Return(seat_return(preset_of[g, cid], honesty_of.get((g, cid)), c.ai_seed, keys[g, cid], rnd,
                                  slot.selector_code, slot.amount_received))

    def is_llm_candidate(g, rnd, cid):
        return llm is not None and (g, cid) in llm_candidates

    for rnd in range(1, config.rounds + 1):
        views = _views(config, rnd)
        this_round = []
        perceived_rows, badge_rows = [], []
        message_jobs = []
        for g in groups:
            t = treatment[g]
            candidates = round_engine.round_candidates(script.human_seats(g, rnd) or seats[g], n_ai, rules)
            ids = [cand.candidate_id for cand in candidates]
            labels = round_engine.display_labels(ids, config.session_code, g, rnd, rules)
            messages = {}
            for cand in (cand for cand in candidates if cand.active):
                cid = cand.candidate_id
                if is_llm_candidate(g, rnd, cid) and script.message(g, rnd, cid) is None:
                    message_jobs.append((g, rnd, cid, keys[g, cid], preset_of[g, cid],
                                         candidate_view(config, rnd, t, own_rounds[g, cid])))
                    messages[cid] = None  # filled below, once the round's calls are in
                else:
                    messages[cid] = message(g, rnd, cand, views)
            gr = GroupRound(g, rnd, t, candidates, labels, messages, composition[g])
            gr.message_timeouts = {cid for cid in messages if script.message_timed_out(g, rnd, cid)}
            this_round.append(gr)
        by_group = {gr.group: gr for gr in this_round}
        if message_jobs:  # every candidate's message of the round at once, as the app requests them
            for (g, _, cid, *_), decision in zip(message_jobs, llm.messages(message_jobs)):
                gr = by_group[g]
                gr.messages[cid] = value_used(decision, 'message')
                if decision.fallback:
                    gr.message_fallbacks.add(cid)
                if timed_out(decision):
                    gr.message_timeouts.add(cid)
        for gr in this_round:
            for code in codes[gr.group]:
                order = round_engine.draw_card_order(gr.candidates, config.session_code, code, rnd)
                cards = round_engine.make_cards(order, gr.labels, gr.messages, gr.treatment)
                gr.cards[code] = cards
                perceived_rows.append([_perceived(card, threshold) for card in cards])
                badge_rows.append([card.badge == 'AI' for card in cards])

        perceived = np.array(perceived_rows, dtype=np.int64)
        ai_badge = np.array(badge_rows, dtype=float)
        positions = selectors.choose(perceived, ai_badge)
        llm_choices = {}
        if llm_selectors:  # every selector's choice of the round at once, once every message is in
            choice_jobs = [(gr.group, rnd, f'S{i}', candidate_key(config, gr.group, f'S{i}'),
                            selector_view(config, rnd, gr.treatment, gr.cards[code], seat_rounds[code]), code)
                           for gr in this_round for i, code in enumerate(codes[gr.group], start=1)
                           if script.choice(gr.group, rnd, code) is None]
            llm_choices = {job[5]: d for job, d in zip(choice_jobs, llm.choices([j[:5] for j in choice_jobs]))}

        row = 0
        reward = np.full(n_selectors, np.nan)
        chosen_kind = np.zeros(n_selectors, dtype=np.int64)
        first_rows, return_jobs, returns_of = {}, [], {}
        for gr in this_round:
            elicit = round_engine.elicits_beliefs(c.elicit_beliefs, gr.treatment)
            first_rows[gr.group] = row
            for code in codes[gr.group]:
                cards = gr.cards[code]
                given = script.choice(gr.group, rnd, code)
                guesses = None
                if given is None and code in llm_choices:
                    decision = llm_choices[code]
                    choice = round_engine.choose(code, cards, decision.value['card'], decision.value['amount'], rules)
                    guesses = decision.value['beliefs']
                    if decision.fallback:
                        gr.choice_fallbacks.add(code)
                elif given is None:
                    card = cards[positions[row]]
                    choice = round_engine.choose(code, cards, card.label, rules.endowment, rules)
                    chosen_kind[row] = perceived[row, positions[row]]
                else:
                    label = next((card.label for card in cards if card.candidate_id == given[0]), '')
                    choice = round_engine.choose(code, cards, label, given[1], rules)
                gr.choices.append(choice)
                if script.choice_timed_out(gr.group, rnd, code):
                    gr.choice_timeouts.add(code)
                if elicit and choice.made:
                    given_guesses = script.guesses(gr.group, rnd, code, cards)
                    if given_guesses is not None:
                        guesses = given_guesses
                    if guesses is None:  # a learner guesses the kinds it perceives
                        guesses = ['ai' if k == AI else 'human' for k in perceived[row]]
                    score = round_engine.score_beliefs(cards, guesses, rules)
                    gr.beliefs[code] = score
                    earned[code][rnd] = score.bonus
                row += 1
            apply_capacity(gr, config, chosen_kind, perceived, first_rows[gr.group], threshold)
            slots = round_engine.return_slots(gr.candidates, gr.choices, rules)
            returns = returns_of[gr.group] = {}
            for cid, candidate_slots in slots.items():
                for slot in candidate_slots.slots:
                    if is_llm_candidate(gr.group, rnd, cid) and script.returned(gr.group, rnd, cid, slot) is None:
                        return_jobs.append((gr.group, rnd, cid, keys[gr.group, cid], preset_of[gr.group, cid],
                                            candidate_view(config, rnd, gr.treatment, own_rounds[gr.group, cid]),
                                            slot))
                    else:
                        returns[slot.selector_code] = returned(gr.group, rnd, cid, slot)
        if return_jobs:  # every return of the round at once, once every choice is in
            for job, decision in zip(return_jobs, llm.returns(return_jobs)):
                returns_of[job[0]][job[6].selector_code] = Return(value_used(decision, 'return'), timed_out(decision),
                                                                  decision.fallback)
        for gr in this_round:
            bonuses = {code: score.bonus for code, score in gr.beliefs.items()}
            gr.outcome = round_engine.settle_round(gr.candidates, gr.choices, returns_of[gr.group], rules, bonuses)
            first = first_rows[gr.group]
            for i, choice in enumerate(gr.choices):
                outcome = gr.outcome.selectors[choice.selector_code]
                learns = script.choice(gr.group, rnd, choice.selector_code) is None and not llm_selectors
                if outcome.amount_sent > 0 and learns:
                    reward[first + i] = outcome.amount_returned / (outcome.amount_sent * rules.multiplier)
                if llm_selectors:
                    seat_rounds[choice.selector_code].append(
                        (rnd, gr.cards[choice.selector_code], choice, outcome, gr.treatment))
            for g, cid in (key for key in llm_candidates if key[0] == gr.group):
                out = gr.outcome.candidates.get(cid)
                if out is not None:
                    own_rounds[g, cid].append(dict(round=rnd, times_chosen=out.times_chosen,
                                                          received=out.amount_received, returned=out.amount_returned))
        selectors.learn(chosen_kind, reward, ~np.isnan(reward))
        played.extend(this_round)

    payments = {code: round_engine.pay_beliefs(rounds, c.belief_payment, config.session_code, code)
                for code, rounds in earned.items()}
    return Result(config, played, payments, list(llm.rows) if llm else [])


def apply_capacity(gr: GroupRound, config: PopulationConfig, chosen_kind, perceived, first_row: int, threshold: int):
    """candidate_capacity, as the app: round_engine.apply_capacity with the app's seed; a moved learner learns
    about the kind it perceives on the card it was moved to (its reward is that card's return)."""
    capacity = config.session.candidate_capacity
    if not capacity:
        return
    offered = {code: [card.candidate_id for card in cards] for code, cards in gr.cards.items()}
    gr.picked = {choice.selector_code: choice.candidate_id for choice in gr.choices}
    seed = round_engine.capacity_seed(config.session_code, gr.group, gr.round)
    gr.choices = list(round_engine.apply_capacity(gr.choices, offered, capacity, seed))
    for i, choice in enumerate(gr.choices):
        if choice.reassigned and choice.made:
            card = next(card for card in gr.cards[choice.selector_code] if card.candidate_id == choice.candidate_id)
            chosen_kind[first_row + i] = _perceived(card, threshold)


def _perceived(card: round_engine.Card, threshold: int) -> int:
    """The kind a selector takes a card for: its badge, else its message's length (AI writes longer)."""
    if card.badge:
        return AI if card.badge == 'AI' else 1 - AI
    return AI if len(card.message) > threshold else 1 - AI


# ---------------------------------------------------------------------------------------------------
# Exports: the rows partner_selection/exports.py writes, from the engine's objects


def _flag(value) -> int:
    return int(bool(value))


def group_cells(config: PopulationConfig) -> dict:
    c = config.session
    return dict(config_name=config.name, config_id=export_schema.config_id(session_values(config)),
                group_incomplete=0, group_selectors=config.selectors_per_group,
                group_human_candidates=c.num_human_candidates, group_ai_candidates=c.num_ai_candidates)


def session_values(config: PopulationConfig) -> dict:
    """Every session-config field's value as played (num_selectors and num_rounds are the engine's)."""
    return {f.name: getattr(config.session, f.name) for f in session_config.FIELDS}


def decision_rows(result: Result):
    config = result.config
    cells = group_cells(config)
    marks = selector_marks(config)
    multiplier = config.session.multiplier
    for gr in result.rounds:
        for choice in gr.choices:
            code = choice.selector_code
            cards = gr.cards[code]
            outcome = gr.outcome.selectors[code]
            chosen = next((card for card in cards if card.candidate_id == choice.candidate_id), None)
            kinds = [card.kind for card in cards]
            n_ai = kinds.count('ai')
            belief = gr.beliefs.get(code)
            payment = result.belief_payments.get(code)
            yield dict(
                session_code=config.session_code, group_id=gr.group, treatment=gr.treatment, round=gr.round,
                selector_id=code, selector_label='', **dict(marks, choice_fallback=_flag(code in gr.choice_fallbacks)),
                n_candidates_offered=len(cards), n_ai_offered=n_ai,
                ai_share_offered=round(n_ai / len(cards), 6) if cards else '',
                offered_candidate_ids=';'.join(card.candidate_id for card in cards),
                offered_kinds=';'.join(kinds),
                offered_badges=';'.join(card.badge for card in cards),
                offered_display_labels=';'.join(card.label for card in cards),
                offered_messages_json=json.dumps([card.message for card in cards], ensure_ascii=False),
                chosen_candidate_id=chosen.candidate_id if chosen else '',
                chosen_kind=chosen.kind if chosen else '',
                chosen_badge=chosen.badge if chosen else '',
                chosen_position=chosen.position if chosen else '',
                chose_ai=(1 if chosen.kind == 'ai' else 0) if chosen else '',
                amount_sent=outcome.amount_sent if chosen else '',
                multiplier=multiplier,
                amount_received_by_candidate=outcome.amount_sent * multiplier if chosen else '',
                amount_returned=outcome.amount_returned if chosen else '',
                return_timed_out=_flag(outcome.return_timed_out),
                return_fallback=_flag(outcome.return_fallback),
                selector_payoff=int(outcome.payoff),
                belief_guesses=belief.guesses_text if belief else '',
                belief_n_correct=belief.n_correct if belief else '',
                belief_bonus=payment.bonuses.get(gr.round, 0) if payment else 0,
                belief_round_paid=_flag(gr.round in payment.paid_rounds) if belief else '',
                seconds_on_choice_page=config.choice_seconds,
                choice_timed_out=_flag(code in gr.choice_timeouts),
                **cells,
                ai_composition=gr.composition,
                choice_reassigned=_flag(choice.reassigned),
                picked_candidate_id=gr.picked.get(code, choice.candidate_id),
            )


def candidate_policy(config: PopulationConfig, candidate_id: str, composition: str = '') -> str:
    """As the app's ai_policy_label: `llm:<model>` for an LLM seat, else `scripted:<preset>` (`:<p>` added for a
    seat that states its intention); `composition` is the group's entry of session.composition_rotation."""
    if society.kind_of(candidate_id) == 'ai':
        name, honesty = config.ai_entries(composition)[int(candidate_id[1:]) - 1]
        if name == 'llm':
            return f'llm:{config.session.llm_model}'
        return f'scripted:{name}' + ('' if honesty is None else f':{honesty:g}')
    return f'scripted:{config.human_preset}'


def candidate_rows(result: Result):
    config = result.config
    cells = group_cells(config)
    policies = {}
    for gr in result.rounds:
        for cand in gr.candidates:
            out = gr.outcome.candidates[cand.candidate_id]
            message = gr.messages.get(cand.candidate_id, '')
            message_timed_out = cand.candidate_id in gr.message_timeouts
            if (gr.group, cand.candidate_id) not in policies:
                policies[gr.group, cand.candidate_id] = candidate_policy(config, cand.candidate_id, gr.composition)
            yield dict(
                session_code=config.session_code, group_id=gr.group, treatment=gr.treatment, round=gr.round,
                candidate_id=cand.candidate_id, participant_code=cand.participant_code, kind=cand.kind,
                policy=policies[gr.group, cand.candidate_id], message_json=export_schema.json_text(message),
                # as the app: no message written (a timed-out page) is not a message of length 0
                message_length='' if message_timed_out and not message else len(message),
                active=_flag(cand.active), times_chosen=out.times_chosen,
                amount_received=out.amount_received, amount_returned=out.amount_returned, returns=out.returns,
                candidate_payoff=out.payoff, message_timed_out=_flag(message_timed_out),
                return_timed_out=_flag(out.return_timed_out),
                message_fallback=_flag(cand.candidate_id in gr.message_fallbacks), return_fallback=_flag(out.return_fallback), dropped=_flag(cand.dropped),
                **cells, ai_composition=gr.composition,
            )


def config_row(config: PopulationConfig) -> dict:
    values = {name: _flag(v) if isinstance(v, bool) else v for name, v in session_values(config).items()}
    cells = group_cells(config)
    return dict(session_code=config.session_code, config_name=cells['config_name'],
                config_id=cells['config_id'], **values)


def write_exports(result: Result, out_dir) -> dict:
    """decisions.csv, candidates.csv, config.csv (the apps' CSV dialect, analysis.io.write_export) and
    population.json (the engine's fields) in out_dir; returns {name: path}."""
    from pathlib import Path

    from analysis.io import write_export

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f'{name}.csv' for name in ('decisions', 'candidates', 'config')}
    write_export(result.decisions_frame(), paths['decisions'], export_schema.DECISION_COLUMNS)
    write_export(result.candidates_frame(), paths['candidates'], export_schema.CANDIDATE_COLUMNS)
    write_export(result.config_frame(), paths['config'], export_schema.CONFIG_COLUMNS)
    if result.config.uses_llm:  # every LLM call, as the apps' custom_export_ai_calls
        paths['ai_calls'] = out / 'ai_calls.csv'
        write_export(result.ai_calls_frame(), paths['ai_calls'], export_schema.AI_CALL_COLUMNS)
    paths['population'] = out / 'population.json'
    paths['population'].write_text(json.dumps(result.config.describe(), indent=2, default=str) + '\n')
    return paths
