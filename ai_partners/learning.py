"""The learning rules of partner choice, one implementation for the analysis, the population engine and
the live AI selectors: Rescorla–Wagner with identity bias, EWA, and baselines (numpy only).

Each selector, round after round, picks one of the offered candidate cards. A model gives every card a
utility; the choice is a softmax over the cards actually offered (`card_log_probabilities`):

    utility(card) = beta * value[kind of card] + bias * [card carries the badge 'AI']

A model holds a state per selector (`initial_state`), gives card utilities with their derivatives
(`utilities`) and learns from a return share (`update`), for many selectors at once as numpy arrays.
`analysis.learning_models` fits these models to exports (and re-exports everything here);
`population.engine` and `ai_partners.selectors` play them. Which kind a card is, is the caller's
business: the fits read the true kinds of the export, agents the kinds they perceive on their pages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    'DEFAULT_Q0', 'HUMAN', 'AI', 'Param', 'LearningModel', 'RandomChoice', 'StaticPreference', 'RescorlaWagner',
    'EWA', 'MODELS', 'card_log_probabilities',
]

# Return share at which a selector breaks even with the default multiplier 3.
DEFAULT_Q0 = 1.0 / 3.0
HUMAN, AI = 0, 1

@dataclass(frozen=True)
class Param:
    """A model parameter: bounds, a starting value and a one-line meaning."""
    lower: float
    init: float
    upper: float
    meaning: str


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
class LearningModel:
    """Interface: parameters, a state per selector, card utilities (with their gradient), an update.

    ``utilities`` returns (u, du): u (S, C) the utility of each card, du (S, C, P) its derivative by
    each parameter, so the likelihood's gradient is exact (the state carries the derivatives of the
    learned values through the rounds).
    """
    name = 'model'
    data_columns = ('selector_id', 'round', 'offered_kinds', 'offered_badges', 'chosen_position',
                    'amount_returned', 'amount_received_by_candidate', 'choice_timed_out')
    params: dict = {}

    def __init__(self, q0: float | str = DEFAULT_Q0):
        if isinstance(q0, str) and q0 not in ('data', 'free'):
            raise ValueError(f"q0 must be a number, 'data' or 'free'; got {q0!r}")
        if q0 == 'free':
            raise ValueError(f"q0='free' is implemented for the Rescorla–Wagner model only, not {self.name!r}")
        self.q0 = q0

    @property
    def q0_source(self) -> str:
        """'fixed', 'data' (mean first-choice return share, see :func:`with_initial_value`) or 'free'."""
        return self.q0 if isinstance(self.q0, str) else 'fixed'

    @property
    def param_names(self) -> list:
        return list(self.params)

    def bounds(self) -> list:
        return [(p.lower, p.upper) for p in self.params.values()]

    def init(self) -> np.ndarray:
        return np.array([p.init for p in self.params.values()], dtype=float)

    def initial_state(self, n: int, theta: dict | None = None) -> dict:
        return {}

    def utilities(self, state: dict, theta: dict, kinds: np.ndarray, ai_badge: np.ndarray):
        raise NotImplementedError

    def update(self, state: dict, theta: dict, chosen_kind: np.ndarray, reward: np.ndarray,
               learn: np.ndarray) -> dict:
        return state

    def describe(self) -> pd.DataFrame:
        """The parameters as a table: parameter, lower, init, upper, meaning."""
        import pandas as pd  # only here: the live selectors need numpy alone

        return pd.DataFrame([dict(parameter=n, lower=p.lower, init=p.init, upper=p.upper, meaning=p.meaning)
                             for n, p in self.params.items()])


_BETA = Param(0.0, 5.0, 50.0, 'inverse temperature: how sharply value differences (return shares) drive choice')
_BIAS = Param(-5.0, 0.0, 5.0, "identity bias: extra utility of a card badged 'AI' (< 0: aversion); badges only")


def _card_values(values: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """values (S, 2[, ...]) per kind -> per card (S, C[, ...]) (padding cards read kind 0)."""
    index = np.clip(kinds, 0, 1).astype(np.int64)
    rows = np.arange(values.shape[0])[:, None]
    return values[rows, index]


class RandomChoice(LearningModel):
    """Chance: every offered card equally likely (no parameters)."""
    name = 'random'
    params = {}

    def utilities(self, state, theta, kinds, ai_badge):
        return np.zeros(kinds.shape), np.zeros(kinds.shape + (0,))


class StaticPreference(LearningModel):
    """No learning: a fixed preference for AI cards (by true kind) plus the identity bias."""
    name = 'static'
    params = {
        'kind_preference': Param(-5.0, 0.0, 5.0, 'fixed extra utility of an AI card (by true kind), no learning'),
        'bias': _BIAS,
    }

    def utilities(self, state, theta, kinds, ai_badge):
        is_ai = (kinds == AI).astype(float)
        u = theta['kind_preference'][:, None] * is_ai + theta['bias'][:, None] * ai_badge
        return u, np.stack([is_ai, ai_badge], axis=2)


_Q0 = Param(0.0, DEFAULT_Q0, 1.0, 'initial value: the return share a selector expects of either kind before any return')


class RescorlaWagner(LearningModel):
    """Rescorla–Wagner: value[kind] += alpha · (return share − value[kind]) for the chosen kind.

    With ``q0='free'`` the initial value is a fourth parameter, ``q0``.
    """
    name = 'rescorla_wagner'
    params = {
        'alpha': Param(0.0, 0.3, 1.0, 'learning rate: how far one return moves the value of that partner kind'),
        'beta': _BETA,
        'bias': _BIAS,
    }

    def __init__(self, q0: float | str = DEFAULT_Q0):
        super().__init__(DEFAULT_Q0 if q0 == 'free' else q0)
        if q0 == 'free':
            self.q0 = 'free'
            self.params = {**type(self).params, 'q0': _Q0}

    def initial_state(self, n, theta=None):
        free = isinstance(self.q0, str) and self.q0 == 'free'
        q0 = theta['q0'][:, None] if free and theta is not None else (DEFAULT_Q0 if free else self.q0)
        state = {'value': np.broadcast_to(q0, (n, 2)).astype(float).copy(), 'd_value': np.zeros((n, 2))}
        if free:
            state['d_value_q0'] = np.ones((n, 2))
        return state

    def utilities(self, state, theta, kinds, ai_badge):
        value = _card_values(state['value'], kinds)
        d_value = _card_values(state['d_value'], kinds)
        beta = theta['beta'][:, None]
        u = beta * value + theta['bias'][:, None] * ai_badge
        columns = [beta * d_value, value, ai_badge]
        if 'd_value_q0' in state:
            columns.append(beta * _card_values(state['d_value_q0'], kinds))
        return u, np.stack(columns, axis=2)

    def update(self, state, theta, chosen_kind, reward, learn):
        rows = np.flatnonzero(learn)
        k = chosen_kind[rows]
        alpha = theta['alpha'][rows]
        old, d_old = state['value'][rows, k], state['d_value'][rows, k]
        error = reward[rows] - old
        state['value'][rows, k] = old + alpha * error
        state['d_value'][rows, k] = (1.0 - alpha) * d_old + error
        if 'd_value_q0' in state:
            state['d_value_q0'][rows, k] *= 1.0 - alpha
        return state


class EWA(LearningModel):
    """Experience-weighted attraction (Camerer & Ho 1999) over the two partner kinds.

    N(t) = rho·N(t−1) + 1;  A_j(t) = [phi·N(t−1)·A_j(t−1) + (delta + (1−delta)·[j chosen])·payoff_j] / N(t).
    The selector never sees what the kind not chosen would have returned, so its foregone payoff is
    the last return share this selector got from that kind (q0 before any).
    """
    name = 'ewa'
    params = {
        'phi': Param(0.0, 0.8, 1.0, 'decay of past attractions'),
        'delta': Param(0.0, 0.3, 1.0, 'weight of the foregone payoff of the kind not chosen'),
        'rho': Param(0.0, 0.5, 1.0, 'decay of the experience weight N (0: attractions are not averaged)'),
        'beta': _BETA,
        'bias': _BIAS,
    }

    def initial_state(self, n, theta=None):
        # d_attraction[..., q]: derivative by phi, delta, rho; d_experience: by rho.
        return {'attraction': np.full((n, 2), self.q0), 'experience': np.ones(n),
                'last_payoff': np.full((n, 2), self.q0), 'd_attraction': np.zeros((n, 2, 3)),
                'd_experience': np.zeros(n)}

    def utilities(self, state, theta, kinds, ai_badge):
        attraction = _card_values(state['attraction'], kinds)
        d_attraction = _card_values(state['d_attraction'], kinds)  # (S, C, 3)
        beta = theta['beta'][:, None]
        u = beta * attraction + theta['bias'][:, None] * ai_badge
        du = np.concatenate([beta[:, :, None] * d_attraction, attraction[:, :, None], ai_badge[:, :, None]], axis=2)
        return u, du

    def update(self, state, theta, chosen_kind, reward, learn):
        rows = np.flatnonzero(learn)
        if rows.size == 0:
            return state
        m = np.arange(rows.size)
        phi, delta, rho = (theta[name][rows][:, None] for name in ('phi', 'delta', 'rho'))
        n_old = state['experience'][rows][:, None]
        dn_old = state['d_experience'][rows][:, None]
        n_new = rho * n_old + 1.0
        dn_new = n_old + rho * dn_old  # by rho
        last = state['last_payoff'][rows]
        k = chosen_kind[rows]
        last[m, k] = reward[rows]
        chosen = np.zeros((rows.size, 2))
        chosen[m, k] = 1.0
        weight = delta + (1.0 - delta) * chosen
        a_old = state['attraction'][rows]
        da_old = state['d_attraction'][rows]
        numerator = phi * n_old * a_old + weight * last
        d_num = np.stack([
            n_old * a_old + phi * n_old * da_old[:, :, 0],
            phi * n_old * da_old[:, :, 1] + (1.0 - chosen) * last,
            phi * (dn_old * a_old + n_old * da_old[:, :, 2]),
        ], axis=2)
        a_new = numerator / n_new
        da_new = d_num / n_new[:, :, None]
        da_new[:, :, 2] -= numerator * dn_new / n_new ** 2
        state['attraction'][rows] = a_new
        state['d_attraction'][rows] = da_new
        state['experience'][rows] = n_new[:, 0]
        state['d_experience'][rows] = dn_new[:, 0]
        state['last_payoff'][rows] = last
        return state


MODELS = {m.name: m for m in (RandomChoice, StaticPreference, RescorlaWagner, EWA)}


def card_log_probabilities(utilities: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """log softmax over the offered cards (padding cards get −inf)."""
    offered = kinds >= 0
    u = np.where(offered, utilities, -np.inf)
    top = u.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    # A trial with no cards (a selector with fewer trials than others) gets a harmless denominator 1.
    total = np.exp(u - top).sum(axis=1, keepdims=True)
    return u - top - np.log(np.where(offered.any(axis=1, keepdims=True), total, 1.0))
