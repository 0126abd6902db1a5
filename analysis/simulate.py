"""Synthetic partner_selection sessions in the export schema, generated from the learning models.

Used by the tests (parameter recovery), the benchmark and power analyses. The output has exactly
the columns of the decisions and candidates exports (docs/codebook.md) and, written with
:func:`analysis.io.write_export`, the same CSV dialect as oTree.

Generative story, per mini-society (group) and round: every candidate writes a message (AI ~120
characters, human ~48); each selector sees all candidates as cards in its own random order, with
badges by treatment (``disclosed``: true kind; ``hidden``: none; ``false_label``: swapped); the
selector chooses by the learning model (or by a learning curve p(t) of choosing an AI); the chosen
candidate returns a share of ``amount_sent × multiplier`` drawn independently for each return from
a normal distribution by kind, clipped to 0..received and rounded to whole points.
"""
from __future__ import annotations

import json
import string
from dataclasses import dataclass

import numpy as np
import pandas as pd

from game_logic.round_engine import pay_beliefs

from .io import CANDIDATE_COLUMNS, DECISION_COLUMNS, TREATMENTS
from .learning_curve import curve_probability
from .learning_models import AI, DEFAULT_Q0, HUMAN, MODELS, card_log_probabilities

__all__ = ['simulate_session', 'Population', 'draw_selector_params', 'DEFAULT_AI_RETURN', 'DEFAULT_HUMAN_RETURN']

# Anchor study (Jiang et al. 2025): points returned out of 30 received (10 sent × 3), mean and sd.
DEFAULT_AI_RETURN = (19.1, 3.4)
DEFAULT_HUMAN_RETURN = (11.4, 6.5)
_RETURN_BASE = 30.0
_MESSAGE_LENGTH = {AI: (120.0, 15.0), HUMAN: (48.0, 20.0)}
_WORDS = ('I', 'will', 'return', 'a', 'fair', 'share', 'trust', 'me', 'promise', 'we', 'both', 'win',
          'half', 'back', 'you', 'can', 'count', 'on', 'it', 'deal', 'points', 'together', 'honest', 'é', '—')


def _message(rng: np.random.Generator, length: int) -> str:
    words, size = [], 0
    while size < length:
        word = _WORDS[rng.integers(len(_WORDS))]
        words.append(word)
        size += len(word) + 1
    text = ' '.join(words)[:length].rstrip() or 'Hi'
    if length > 60 and rng.random() < 0.1:
        text = text[:30] + '\n' + text[31:]  # newlines must survive the export
    return text


@dataclass(frozen=True)
class Population:
    """A population distribution of one parameter; each selector draws its own value from it.

    dist : 'beta' (for rates and probabilities in 0..1), 'lognormal' (positive, e.g. the inverse
        temperature), 'normal' (e.g. the identity bias) or 'fixed' (everyone ``mean``).
    mean, sd : of the parameter itself on its natural scale (not of its logarithm); the beta's shape
        parameters and the lognormal's log-scale mu, sigma are derived from them.

    A normal draw is clipped to the model parameter's bounds (see :func:`draw_selector_params`).
    """
    dist: str
    mean: float
    sd: float = 0.0

    def __post_init__(self):
        if self.dist not in ('beta', 'lognormal', 'normal', 'fixed'):
            raise ValueError(f"unknown population distribution {self.dist!r}; expected beta, lognormal, normal, fixed")
        if self.sd < 0:
            raise ValueError(f'population sd must be >= 0, got {self.sd}')
        if self.dist == 'beta' and self.sd > 0 and not (0 < self.mean < 1 and self.sd ** 2 < self.mean * (1 - self.mean)):
            raise ValueError(f'a beta population needs 0 < mean < 1 and sd² < mean·(1 − mean); got {self.mean}, {self.sd}')
        if self.dist == 'lognormal' and self.mean <= 0:
            raise ValueError(f'a lognormal population needs mean > 0, got {self.mean}')

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.dist == 'fixed' or self.sd == 0:
            return np.full(n, float(self.mean))
        if self.dist == 'beta':
            concentration = self.mean * (1 - self.mean) / self.sd ** 2 - 1
            return rng.beta(self.mean * concentration, (1 - self.mean) * concentration, n)
        if self.dist == 'lognormal':
            sigma2 = np.log1p((self.sd / self.mean) ** 2)
            return rng.lognormal(np.log(self.mean) - sigma2 / 2, np.sqrt(sigma2), n)
        return rng.normal(self.mean, self.sd, n)

    @classmethod
    def parse(cls, value) -> 'Population | None':
        """A Population from itself, a dict {'dist', 'mean', 'sd'} or a tuple (dist, mean, sd); else None."""
        if isinstance(value, Population):
            return value
        if isinstance(value, dict) and 'dist' in value:
            return cls(value['dist'], float(value['mean']), float(value.get('sd', 0.0)))
        if isinstance(value, tuple) and value and isinstance(value[0], str):
            return cls(value[0], *map(float, value[1:]))
        return None


def _per_selector(value, n: int, rng: np.random.Generator | None = None, bounds=None) -> np.ndarray:
    """One value per selector: a number (everyone), an array (one each) or a :class:`Population` (drawn)."""
    population = Population.parse(value)
    if population is not None:
        drawn = population.draw(rng if rng is not None else np.random.default_rng(0), n)
        return np.clip(drawn, *bounds) if bounds is not None else drawn
    value = np.asarray(value, dtype=float)
    return np.broadcast_to(value, (n,)).astype(float).copy()


def draw_selector_params(model: str, params: dict | None, n: int, seed: int = 0, treatment_of=None) -> pd.DataFrame:
    """The parameters each of ``n`` selectors acts on in :func:`simulate_session` (same seed, same draws).

    ``params`` as in :func:`simulate_session`. Draws use their own random stream (seeded from ``seed``),
    so a session without population parameters is the same as before they existed.

    Returns
    -------
    DataFrame, one row per selector (session order): one column per model parameter (and ``q0``, the
    initial value of both partner kinds, for the learning models; p0, p_inf, k for 'curve').
    """
    params = dict(params or {})
    rng = np.random.default_rng([seed, 7919])
    if model == 'curve':
        treatment_of = np.asarray(treatment_of if treatment_of is not None else ['disclosed'] * n)
        per_treatment = params if params and all(isinstance(v, dict) and 'dist' not in v for v in params.values()) else None
        out = pd.DataFrame(index=range(n), columns=['p0', 'p_inf', 'k'], dtype=float)
        for t in dict.fromkeys(treatment_of):
            spec = (per_treatment or {}).get(t, params)
            missing = {'p0', 'p_inf', 'k'} - set(spec)
            if missing:
                raise ValueError(f"curve parameters for {t!r} lack {sorted(missing)}")
            rows = np.flatnonzero(treatment_of == t)
            for name, bounds in (('p0', (0.0, 1.0)), ('p_inf', (0.0, 1.0)), ('k', (0.0, np.inf))):
                value = spec[name]
                if Population.parse(value) is None and np.ndim(value) > 0:
                    value = np.asarray(value, dtype=float)[rows]
                out.loc[rows, name] = _per_selector(value, rows.size, rng, bounds)
        return out
    if model not in MODELS:
        raise ValueError(f'unknown model {model!r}; expected one of {sorted(MODELS) + ["curve"]}')
    declared = MODELS[model]().params
    treatment_of = np.asarray(treatment_of if treatment_of is not None else [''] * n)
    per_treatment = bool(params) and all(isinstance(v, dict) and 'dist' not in v for v in params.values())
    specs = {t: params.get(t, {}) for t in dict.fromkeys(treatment_of)} if per_treatment else {None: params}
    out = []
    for t, spec in specs.items():
        unknown = set(spec) - set(declared) - {'q0'}
        if unknown:
            raise ValueError(f'model {model!r} has no parameter(s) {sorted(unknown)}; it has {list(declared)}')
        rows = np.flatnonzero(treatment_of == t) if per_treatment else np.arange(n)

        def column(value, bounds):
            if Population.parse(value) is None and np.ndim(value) > 0 and per_treatment:
                value = np.asarray(value, dtype=float)[rows]
            return _per_selector(value, rows.size, rng, bounds)
        columns = {name: column(spec.get(name, p.init), (p.lower, p.upper)) for name, p in declared.items()}
        if model != 'random':
            columns['q0'] = column(spec.get('q0', DEFAULT_Q0), (0.0, 1.0))
        out.append(pd.DataFrame(columns, index=rows))
    return pd.concat(out).sort_index()


def simulate_session(model: str = 'rescorla_wagner', params: dict | None = None, *,
                     treatments=TREATMENTS, n_groups: int = 3, n_selectors: int = 3, n_human: int = 2,
                     n_ai: int = 2, n_rounds: int = 10, endowment: int = 10, multiplier: int = 3,
                     ai_return=DEFAULT_AI_RETURN, human_return=DEFAULT_HUMAN_RETURN,
                     message_return_slope: float = 0.0, timeout_rate: float = 0.0,
                     elicit_beliefs: bool = True, belief_accuracy: float = 0.6, belief_bonus: int = 1,
                     belief_payment: str = 'one_random_round',
                     session_code: str = 'sim00001', seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate one session of ``n_groups`` mini-societies.

    Parameters
    ----------
    model : 'random', 'static', 'rescorla_wagner', 'ewa' (see :mod:`analysis.learning_models`) or
        'curve' (choose an AI with probability p(t) = p_inf − (p_inf − p0)·exp(−k(t−1))).
    params : model parameters; each value a number (everyone), an array with one value per selector
        (selector order: group by group) or a :class:`Population` (each selector draws its own:
        heterogeneous learners, e.g. ``alpha=Population('beta', 0.3, 0.1)``,
        ``beta=Population('lognormal', 8, 3)``, ``bias=Population('normal', -1, 0.5)``; a dict
        ``{'dist', 'mean', 'sd'}`` works too). Learning models also take ``q0``, the value both partner
        kinds start from (default 1/3, break-even). Per treatment: {treatment: {name: value}} (e.g. a bias
        only in 'disclosed', beta=0 for chance in 'hidden'). For 'curve': {'p0', 'p_inf', 'k'} or
        {treatment: {'p0', 'p_inf', 'k'}}, values as above (per-selector curves: the population curve is
        then their average). Missing parameters take the model's declared init. The values drawn are in
        ``decisions.attrs['selector_params']`` (a dict of lists; see :func:`draw_selector_params`).
    treatments : assigned to groups in rotation (group 1 gets the first, …).
    ai_return, human_return : (mean, sd) of the points returned out of 30 received (scaled to the actual
        amount received).
    message_return_slope : change in the mean return share per 100 message characters above the kind's
        typical length (0: message length predicts return only through kind).
    timeout_rate : probability that a selector's choice page times out (no choice, flagged).
    belief_accuracy : probability that each belief guess (hidden, false_label) is right.
    belief_payment : as the session config: 'one_random_round' pays one round's guesses per selector (drawn
        as the app draws it), 'all_rounds' every round's; never part of ``selector_payoff``.

    Returns
    -------
    (decisions, candidates): DataFrames with exactly the export columns, one row per selector × round
    and per candidate × round.
    """
    rng = np.random.default_rng(seed)
    treatments = list(treatments)
    bad = [t for t in treatments if t not in TREATMENTS]
    if bad:
        raise ValueError(f'unknown treatment(s) {bad}; expected some of {list(TREATMENTS)}')
    if n_selectors < 1 or n_human + n_ai < 1 or n_rounds < 1 or n_groups < 1:
        raise ValueError('need at least one group, selector, candidate and round')
    S, C = n_groups * n_selectors, n_human + n_ai
    group_of = np.repeat(np.arange(n_groups), n_selectors)
    # The export's configuration and composition cells: a simulated config, every group complete.
    group_cells = dict(config_name='simulated', config_id='', group_incomplete=0, group_selectors=n_selectors,
                       group_human_candidates=n_human, group_ai_candidates=n_ai)
    group_treatment = [treatments[g % len(treatments)] for g in range(n_groups)]
    treatment_of = np.array([group_treatment[g] for g in group_of])
    candidate_kind = np.array([HUMAN] * n_human + [AI] * n_ai)
    candidate_ids = [f'H{i + 1}' for i in range(n_human)] + [f'A{i + 1}' for i in range(n_ai)]
    selector_ids = [f'{session_code}s{s + 1:04d}' for s in range(S)]
    mean_share = {AI: ai_return[0] / _RETURN_BASE, HUMAN: human_return[0] / _RETURN_BASE}
    sd_share = {AI: ai_return[1] / _RETURN_BASE, HUMAN: human_return[1] / _RETURN_BASE}

    selector_params = draw_selector_params(model, params, S, seed, treatment_of)
    chooser = _Chooser(model, selector_params, S, treatment_of)
    decisions, candidate_rows = [], []
    rows = np.arange(S)
    for rnd in range(1, n_rounds + 1):
        lengths = np.zeros((n_groups, C), dtype=int)
        messages = [[None] * C for _ in range(n_groups)]
        for g in range(n_groups):
            for c in range(C):
                mu, sd = _MESSAGE_LENGTH[candidate_kind[c]]
                lengths[g, c] = int(np.clip(round(rng.normal(mu, sd)), 2, 200))
                messages[g][c] = _message(rng, lengths[g, c])
                lengths[g, c] = len(messages[g][c])
        order = np.argsort(rng.random((S, C)), axis=1)  # card j of selector s shows candidate order[s, j]
        kinds = candidate_kind[order]
        badge_ai = np.zeros((S, C))
        badges = np.full((S, C), '', dtype=object)
        for s in range(S):
            if treatment_of[s] == 'disclosed':
                badges[s] = np.where(kinds[s] == AI, 'AI', 'Human')
            elif treatment_of[s] == 'false_label':
                badges[s] = np.where(kinds[s] == AI, 'Human', 'AI')
        badge_ai[badges == 'AI'] = 1.0
        position = chooser.choose(rng, rnd, kinds, badge_ai)
        timed_out = rng.random(S) < timeout_rate
        chosen_candidate = order[rows, position]
        chosen_kind = candidate_kind[chosen_candidate]
        amount_sent = np.where(timed_out, 0, endowment)
        received = amount_sent * multiplier
        typical = np.array([_MESSAGE_LENGTH[k][0] for k in chosen_kind])
        chosen_length = lengths[group_of, chosen_candidate]
        share_mean = np.array([mean_share[k] for k in chosen_kind]) + message_return_slope * (chosen_length - typical) / 100
        share = np.clip(rng.normal(share_mean, [sd_share[k] for k in chosen_kind]), 0.0, 1.0)
        returned = np.round(share * received).astype(int)
        reward = np.where(timed_out, np.nan, returned / np.maximum(received, 1))
        chooser.learn(chosen_kind, reward, ~timed_out)

        labels = np.array([f'Candidate {x}' for x in string.ascii_uppercase[10:10 + C]])
        for s in range(S):
            g, t = group_of[s], treatment_of[s]
            card_labels = labels[rng.permutation(C)]
            kinds_s = ['ai' if k == AI else 'human' for k in kinds[s]]
            guesses, n_correct, bonus = '', '', 0
            if elicit_beliefs and t in ('hidden', 'false_label'):
                right = rng.random(C) < belief_accuracy
                guess = [k if ok else ('human' if k == 'ai' else 'ai') for k, ok in zip(kinds_s, right)]
                guesses, n_correct, bonus = ';'.join(guess), int(right.sum()), int(right.sum()) * belief_bonus
            chosen = not timed_out[s]
            card = position[s]
            decisions.append(dict(
                session_code=session_code, group_id=g + 1, treatment=t, round=rnd, selector_id=selector_ids[s],
                selector_label='', selector_kind='human', selector_policy='human', selector_params='',
                choice_fallback=0,
                n_candidates_offered=C, n_ai_offered=n_ai, ai_share_offered=round(n_ai / C, 6),
                offered_candidate_ids=';'.join(candidate_ids[c] for c in order[s]),
                offered_kinds=';'.join(kinds_s), offered_badges=';'.join(badges[s]),
                offered_display_labels=';'.join(card_labels),
                offered_messages_json=json.dumps([messages[g][c] for c in order[s]], ensure_ascii=False),
                chosen_candidate_id=candidate_ids[chosen_candidate[s]] if chosen else '',
                picked_candidate_id=candidate_ids[chosen_candidate[s]] if chosen else '', choice_reassigned=0,
                ai_composition='',
                chosen_kind=kinds_s[card] if chosen else '',
                chosen_badge=badges[s][card] if chosen else '',
                chosen_position=card + 1 if chosen else '',
                chose_ai=int(kinds[s][card] == AI) if chosen else '',
                amount_sent=int(amount_sent[s]) if chosen else '', multiplier=multiplier,
                amount_received_by_candidate=int(received[s]) if chosen else '',
                amount_returned=int(returned[s]) if chosen else '',
                return_timed_out=0, return_fallback=0,
                selector_payoff=int(endowment - amount_sent[s] + (returned[s] if chosen else 0)),
                belief_guesses=guesses, belief_n_correct=n_correct, belief_bonus=bonus,
                belief_round_paid=0 if guesses else '',
                seconds_on_choice_page=round(float(rng.lognormal(2.3, 0.5)), 1),
                choice_timed_out=int(timed_out[s]), **group_cells,
            ))
        for g in range(n_groups):
            mine = (group_of == g) & ~timed_out
            for c in range(C):
                by = mine & (chosen_candidate == c)
                got = [int(x) for x in returned[by]]
                amount_in = int(received[by].sum())
                candidate_rows.append(dict(
                    session_code=session_code, group_id=g + 1, treatment=group_treatment[g], round=rnd,
                    candidate_id=candidate_ids[c],
                    participant_code='' if candidate_kind[c] == AI else f'{session_code}g{g + 1}{candidate_ids[c]}',
                    kind='ai' if candidate_kind[c] == AI else 'human',
                    policy='scripted:prosocial_ai' if candidate_kind[c] == AI else 'human',
                    message_json=json.dumps(messages[g][c], ensure_ascii=False),
                    message_length=int(lengths[g, c]), active=1, times_chosen=int(by.sum()),
                    amount_received=amount_in, amount_returned=int(sum(got)), returns=';'.join(map(str, got)),
                    candidate_payoff=amount_in - int(sum(got)), message_timed_out=0, return_timed_out=0,
                    message_fallback=0, return_fallback=0, dropped=0, **group_cells,
                ))
    _pay_beliefs(decisions, belief_payment)
    decisions = pd.DataFrame(decisions, columns=DECISION_COLUMNS)
    # a dict of lists, not a DataFrame: pandas compares attrs when it combines frames
    decisions.attrs['selector_params'] = selector_params.assign(selector_id=selector_ids,
                                                                treatment=treatment_of).to_dict('list')
    return decisions, pd.DataFrame(candidate_rows, columns=CANDIDATE_COLUMNS)


def _pay_beliefs(decisions: list, mode: str) -> None:
    """As the app does after the last round (game_logic.round_engine.pay_beliefs): belief_bonus becomes the
    bonus paid for that round's guesses (0 in unpaid rounds); belief_round_paid says which rounds were paid."""
    by_selector = {}
    for row in decisions:
        if row['belief_guesses']:
            by_selector.setdefault((row['session_code'], row['selector_id']), []).append(row)
    for (session_code, selector_id), rows in by_selector.items():
        payment = pay_beliefs({row['round']: row['belief_bonus'] for row in rows}, mode, session_code, selector_id)
        for row in rows:
            row['belief_round_paid'] = int(row['round'] in payment.paid_rounds)
            row['belief_bonus'] = payment.bonuses.get(row['round'], 0)


class _Chooser:
    """Draws each selector's card from a learning model (state kept across rounds) or a curve."""

    def __init__(self, model: str, selector_params: pd.DataFrame, n: int, treatment_of: np.ndarray):
        self.kind = model
        if model == 'curve':
            self.curve = {name: selector_params[name].to_numpy(float) for name in ('p0', 'p_inf', 'k')}
            return
        self.model = MODELS[model]()
        self.theta = {name: selector_params[name].to_numpy(float) for name in self.model.params}
        if 'q0' in selector_params:
            self.model.q0 = selector_params['q0'].to_numpy(float)[:, None]
        self.state = self.model.initial_state(n)

    def choose(self, rng, rnd, kinds, badge_ai) -> np.ndarray:
        S, C = kinds.shape
        if self.kind == 'curve':
            p_ai = curve_probability(rnd, **self.curve)
            has_ai, has_human = (kinds == AI).any(axis=1), (kinds == HUMAN).any(axis=1)
            want_ai = np.where(has_ai & has_human, rng.random(S) < p_ai, has_ai)
            # a random card of the wanted kind
            score = np.where((kinds == AI) == want_ai[:, None], rng.random((S, C)), -1.0)
            return score.argmax(axis=1)
        logp = card_log_probabilities(self.model.utilities(self.state, self.theta, kinds, badge_ai)[0], kinds)
        cumulative = np.exp(logp).cumsum(axis=1)
        draw = rng.random(S)[:, None] * cumulative[:, -1:]
        return np.minimum((cumulative < draw).sum(axis=1), C - 1)

    def learn(self, chosen_kind, reward, made):
        if self.kind != 'curve':
            self.state = self.model.update(self.state, self.theta, chosen_kind.astype(np.int64), reward,
                                           made & np.isfinite(reward))
