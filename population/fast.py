"""The vectorised engine: the same round rules as game_logic.round_engine, over numpy arrays of all groups.

For societies where calling round_engine per selector is too slow (benchmarks/bench_population.py measures
both: 2,600–8,000 agent-decisions per second through round_engine on the 2-core development machine under
load, against the 20,000 per second that 10,000 selectors × 20 rounds in 10 s need; this engine runs
about 500,000 per second). What stays the same: the candidates (round_engine's candidate order, sorted ids),
the badge rule (society.badge_for), the selectors' learning rule (population.engine.Selectors, i.e.
analysis.learning_models), the scripted presets' return distribution (a Beta fraction of the amount
received, rounded half up, in 0..received, as ai_partners.scripted.draw_return), the payoffs
(endowment − sent + returned; base pay + received − returned), belief scoring and payment
(round_engine.pay_beliefs). What differs: the random streams. Card letters and orders come from one numpy
generator instead of the app's per-selector seed strings, returns from numpy's Beta instead of
decision_rng, and each message is drawn from a pool of the preset's scripted messages (drawn once per run
with ai_partners.scripted.draw_message) instead of composed afresh. tests/test_population.py feeds this
engine's decisions through round_engine.settle_round and checks every payoff and export cell.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ai_partners import GameView
from ai_partners.scripted import decision_rng, draw_message
from ai_partners.learning import AI, HUMAN
from game_logic import export_schema, round_engine, society
from game_logic.session_config import ConfigError

from .config import PopulationConfig
from .engine import Selectors, candidate_policy, config_row, group_cells, round_rules, selector_code, selector_marks

__all__ = ['run_fast', 'FastResult', 'MESSAGE_POOL']

MESSAGE_POOL = 256  # scripted messages drawn per candidate and treatment (a small pool adds run-level noise)


@dataclass
class FastResult:
    """A vectorised run. Arrays are (rounds, selectors) or (rounds, groups, candidates); selectors are in
    group order (group 1's first), candidates in round_engine's order (sorted ids)."""

    config: PopulationConfig
    candidate_ids: list
    candidate_kind: np.ndarray  # (C,) AI / HUMAN
    treatment: np.ndarray  # (G,) per group
    letters: np.ndarray  # (R, G, C) card letter per candidate
    message_index: np.ndarray  # (R, G, C) into messages[preset]
    message_texts: list  # (C,) list of the pool each candidate draws from (per treatment: dict)
    order: np.ndarray  # (R, S, C) candidate index per card position
    position: np.ndarray  # (R, S) 0-based chosen card
    sent: np.ndarray  # (R, S)
    returned: np.ndarray  # (R, S)
    guesses: np.ndarray | None  # (R, S, C) perceived AI per card, where beliefs are elicited
    belief_paid: np.ndarray  # (R, S) bonus paid for that round's guesses
    belief_round_paid: np.ndarray  # (R, S) bool

    @property
    def chosen(self) -> np.ndarray:
        """(R, S) candidate index chosen."""
        return np.take_along_axis(self.order, self.position[:, :, None], axis=2)[:, :, 0]

    def message(self, r: int, g: int, c: int) -> str:
        pool = self.message_texts[c][self.treatment[g]]
        return pool[self.message_index[r, g, c]]

    def decisions_frame(self) -> pd.DataFrame:
        return pd.DataFrame(_decision_rows(self), columns=export_schema.DECISION_COLUMNS)

    def candidates_frame(self) -> pd.DataFrame:
        return pd.DataFrame(_candidate_rows(self), columns=export_schema.CANDIDATE_COLUMNS)

    def config_frame(self) -> pd.DataFrame:
        return pd.DataFrame([config_row(self.config)], columns=export_schema.CONFIG_COLUMNS)


def run_fast(config: PopulationConfig) -> FastResult:
    """Play the run with numpy across all groups (module docstring)."""
    if config.uses_llm:
        raise ConfigError('the fast engine plays scripted candidates and learning selectors only; LLM agents '
                          '(ai_policies with llm, selector_policy llm) need the rules engine (--engine rules, '
                          'or engine = "rules" in a sweep\'s [sweep] table)')
    c = config.session
    if config.uses_composition or c.candidate_capacity:
        raise ConfigError('the fast engine plays one preset list for every group and unlimited candidates; '
                          'ai_candidate_mix / compositions and candidate_capacity need the rules engine (--engine '
                          'rules, or engine = "rules" in a sweep\'s [sweep] table)')
    rules = round_rules(config)
    rng = np.random.default_rng([config.seed, 15485863])
    G, per_group, R = config.groups, config.selectors_per_group, config.rounds
    S = config.n_selectors
    ids = sorted(society.candidate_ids(c.num_human_candidates, c.num_ai_candidates)['human']
                 + society.candidate_ids(0, c.num_ai_candidates)['ai'])
    C = len(ids)
    kind = np.array([AI if society.kind_of(cid) == 'ai' else HUMAN for cid in ids])
    presets = config.presets
    preset_of = [presets[config.human_preset] if kind[i] == HUMAN else presets[config.ai_preset_of(int(cid[1:]))]
                 for i, cid in enumerate(ids)]
    treatments = np.array([society.treatment_for_group(g, c.treatment_rotation) for g in range(1, G + 1)])
    group_of = np.repeat(np.arange(G), per_group)
    treatment_of = treatments[group_of]

    # One pool of scripted messages per candidate preset and treatment (the view differs by badge only).
    pools = []
    rotation = list(dict.fromkeys(c.treatment_rotation))
    lengths = np.zeros((C, len(rotation), MESSAGE_POOL), dtype=int)
    for i, cid in enumerate(ids):
        by_treatment = {}
        for j, t in enumerate(rotation):
            view = GameView(role='candidate', round_number=1, num_rounds=1, endowment=c.endowment,
                            multiplier=c.multiplier, max_message_length=c.max_message_length, identity=t,
                            shown_as=society.badge_for(society.kind_of(cid), t))
            texts = [draw_message(preset_of[i], decision_rng(c.ai_seed, f'{config.session_code}-pool-{cid}', k,
                                                             'message'), view) for k in range(MESSAGE_POOL)]
            by_treatment[t] = texts
            lengths[i, j] = [len(text) for text in texts]
        pools.append(by_treatment)
    t_index = np.array([rotation.index(t) for t in treatments])

    # Badges per (selector, candidate): what society.badge_for gives for that kind in that treatment.
    badge_ai = np.zeros((S, C))
    shows = {t: [society.badge_for('ai' if k == AI else 'human', t) for k in kind] for t in rotation}
    for t in rotation:
        rows = treatment_of == t
        badge_ai[rows] = [b == 'AI' for b in shows[t]]
    has_badge = np.array([bool(shows[t][0]) for t in treatment_of])
    elicit = np.array([round_engine.elicits_beliefs(c.elicit_beliefs, t) for t in treatment_of])

    alphas = np.array([p.beta_parameters for p in preset_of])  # (C, 2): Beta(a, b) of each candidate's returns
    selectors = Selectors(config)
    letters_all = np.array(list(society.LABEL_LETTERS))
    rows = np.arange(S)[:, None]
    out = dict(
        letters=np.empty((R, G, C), dtype='<U1'), message_index=np.empty((R, G, C), dtype=np.int16),
        order=np.empty((R, S, C), dtype=np.int8), position=np.empty((R, S), dtype=np.int8),
        sent=np.full((R, S), rules.endowment, dtype=np.int32), returned=np.empty((R, S), dtype=np.int32),
        guesses=np.zeros((R, S, C), dtype=bool) if elicit.any() else None,
    )
    n_correct = np.zeros((R, S), dtype=int)
    received_each = rules.endowment * rules.multiplier
    for r in range(R):
        draw_letters = np.argsort(rng.random((G, len(letters_all))), axis=1)[:, :C]
        if rules.persistent_labels and r > 0:
            out['letters'][r] = out['letters'][0]
        else:
            out['letters'][r] = letters_all[draw_letters]
        message_index = rng.integers(0, MESSAGE_POOL, size=(G, C))
        out['message_index'][r] = message_index
        msg_len = lengths[np.arange(C)[None, :], t_index[:, None], message_index]  # (G, C)
        order = np.argsort(rng.random((S, C)), axis=1)
        out['order'][r] = order
        card_badge = badge_ai[rows, order]
        by_length = msg_len[group_of[:, None], order] > config.perceive_ai_above
        # what the page shows: the badge where there is one, else the message's length (engine docstring)
        perceived = np.where(np.where(has_badge[:, None], card_badge > 0, by_length), AI, HUMAN)
        position = selectors.choose(perceived, card_badge)
        out['position'][r] = position
        chosen = order[np.arange(S), position]
        fraction = rng.beta(alphas[chosen, 0], alphas[chosen, 1])
        returned = np.clip(np.floor(fraction * received_each + 0.5), 0, received_each).astype(np.int32)
        out['returned'][r] = returned
        if out['guesses'] is not None:
            out['guesses'][r] = (perceived == AI) & elicit[:, None]
            n_correct[r] = ((perceived == kind[order]).sum(axis=1)) * elicit
        selectors.learn(perceived[np.arange(S), position], returned / received_each, np.ones(S, dtype=bool))

    belief_paid = np.zeros((R, S), dtype=int)
    round_paid = np.zeros((R, S), dtype=bool)
    if elicit.any():
        for s in np.flatnonzero(elicit):
            code = selector_code(config, group_of[s] + 1, s % per_group + 1)
            earned = {r + 1: int(n_correct[r, s]) * rules.belief_bonus_per_correct for r in range(R)}
            payment = round_engine.pay_beliefs(earned, c.belief_payment, config.session_code, code)
            for rnd, bonus in payment.bonuses.items():
                belief_paid[rnd - 1, s] = bonus
                round_paid[rnd - 1, s] = True
    return FastResult(config, ids, kind, treatments, message_texts=pools, belief_paid=belief_paid,
                      belief_round_paid=round_paid, **out)


def _decision_rows(res: FastResult):
    config = res.config
    cells = group_cells(config)
    R, S, C = res.order.shape
    per_group = config.selectors_per_group
    multiplier = config.session.multiplier
    endowment = config.session.endowment
    kinds = ['ai' if k == AI else 'human' for k in res.candidate_kind]
    elicit = {t: round_engine.elicits_beliefs(config.session.elicit_beliefs, t) for t in set(res.treatment)}
    codes = [selector_code(config, s // per_group + 1, s % per_group + 1) for s in range(S)]
    for r in range(R):
        for s in range(S):
            g = s // per_group
            t = res.treatment[g]
            order = res.order[r, s]
            pos = int(res.position[r, s])
            cid = [res.candidate_ids[i] for i in order]
            card_kinds = [kinds[i] for i in order]
            badges = [society.badge_for(k, t) for k in card_kinds]
            chosen = order[pos]
            n_ai = card_kinds.count('ai')
            guesses = ''
            if elicit[t]:
                guess = ['ai' if x else 'human' for x in res.guesses[r, s]]
                guesses = ';'.join(guess)
                n_right = sum(a == b for a, b in zip(guess, card_kinds))
            yield dict(
                session_code=config.session_code, group_id=g + 1, treatment=t, round=r + 1, selector_id=codes[s],
                selector_label='', **selector_marks(config),
                n_candidates_offered=C, n_ai_offered=n_ai, ai_share_offered=round(n_ai / C, 6),
                offered_candidate_ids=';'.join(cid), offered_kinds=';'.join(card_kinds),
                offered_badges=';'.join(badges),
                offered_display_labels=';'.join(res.letters[r, g, i] for i in order),
                offered_messages_json=json.dumps([res.message(r, g, i) for i in order], ensure_ascii=False),
                chosen_candidate_id=res.candidate_ids[chosen], chosen_kind=kinds[chosen], chosen_badge=badges[pos],
                chosen_position=pos + 1, chose_ai=int(kinds[chosen] == 'ai'), amount_sent=int(res.sent[r, s]),
                multiplier=multiplier, amount_received_by_candidate=int(res.sent[r, s]) * multiplier,
                amount_returned=int(res.returned[r, s]), return_timed_out=0, return_fallback=0,
                selector_payoff=int(endowment - res.sent[r, s] + res.returned[r, s]),
                belief_guesses=guesses, belief_n_correct=n_right if guesses else '',
                belief_bonus=int(res.belief_paid[r, s]),
                belief_round_paid=int(res.belief_round_paid[r, s]) if guesses else '',
                seconds_on_choice_page=config.choice_seconds, choice_timed_out=0, **cells,
                ai_composition='', choice_reassigned=0, picked_candidate_id=res.candidate_ids[chosen],
            )


def _candidate_rows(res: FastResult):
    config = res.config
    cells = group_cells(config)
    R, S, C = res.order.shape
    per_group = config.selectors_per_group
    multiplier, base = config.session.multiplier, config.session.candidate_base_pay
    chosen = res.chosen
    policies = [candidate_policy(config, cid) for cid in res.candidate_ids]
    for r in range(R):
        for g in range(config.groups):
            mine = slice(g * per_group, (g + 1) * per_group)
            for i, cid in enumerate(res.candidate_ids):
                by = chosen[r, mine] == i
                got = res.returned[r, mine][by]
                received = int(res.sent[r, mine][by].sum()) * multiplier
                text = res.message(r, g, i)
                yield dict(
                    session_code=config.session_code, group_id=g + 1, treatment=res.treatment[g], round=r + 1,
                    candidate_id=cid, participant_code=f'{config.session_code}g{g + 1}{cid}' if cid[0] == 'H' else '',
                    kind='ai' if res.candidate_kind[i] == AI else 'human', policy=policies[i],
                    message_json=export_schema.json_text(text), message_length=len(text), active=1,
                    times_chosen=int(by.sum()), amount_received=received, amount_returned=int(got.sum()),
                    returns=';'.join(str(int(x)) for x in got), candidate_payoff=base + received - int(got.sum()),
                    message_timed_out=0, return_timed_out=0, message_fallback=0, return_fallback=0, dropped=0,
                    **cells, ai_composition='',
                )
