"""Learning models of partner choice: Rescorla–Wagner with identity bias, EWA, and baselines.

The models (their states, utilities, updates and the softmax choice rule) are `ai_partners.learning`,
re-exported here: the live AI selectors and the population engine play the very rules these fits estimate.
This module adds the data (`Trials`), the likelihood and the fits.

Each selector, round after round, picks one of the offered candidate cards. A model gives every card
a utility; the choice is a softmax over the cards actually offered, so the chance level (how many
AI cards there were) is built into the likelihood.

    utility(card) = beta * value[kind of card] + bias * [card carries the badge 'AI']

The identity bias acts only where a badge is visible (``disclosed``; in ``false_label`` it follows
the *label*, which is what the selector saw). Values are learned per true partner kind (ai/human):
the models assume a selector can tell the kinds apart, by label or by the messages' style; in the
hidden treatment that is the hypothesis under test (a value gap that does not show in choices
drives beta towards 0).

Reward signal: the **return share** ``amount_returned / amount_received_by_candidate`` (0..1). It is
scale-free across endowments, multipliers and ``selector_chooses_amount``; 1/3 is the break-even
point with the default multiplier 3 (the selector gets back what was sent). A round where nothing
was sent (reward undefined) updates nothing; a round without a choice (timeout) neither contributes to
the likelihood nor updates.

Initial value ``q0`` (the value both partner kinds start from, before any return): what a selector
expects decides whether a first return pleases (the kind chosen gains against the one not yet tried)
or disappoints, so a wrong q0 is absorbed by the other parameters, the identity bias among them (see
docs/coverage.md). Every model takes ``q0`` as

* a number: fixed (default 1/3, break-even);
* ``'data'``: set from the fitted sample, separately in each treatment: the mean return share of the
  selectors' first observed choice (their round-1 payoffs), i.e. selectors start out expecting what a
  first partner typically returns;
* ``'free'`` (Rescorla–Wagner only): estimated as a fourth parameter (bounds 0..1, exact gradient).

Models declare ``data_columns`` and ``params`` as ``name: Param(lower, init, upper, meaning)``
(hBayesDM's interface idea). Fitting is maximum likelihood with several starts, pooled (one
parameter set for everyone) or per selector. Gradients are exact: each model carries the derivatives
of its learned values through the rounds. The per-selector fit optimizes all selectors at once with
numpy (their likelihoods are independent) by damped Newton steps, each selector with its own
3×3 (or 5×5) Hessian from differences of the exact gradient.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from ai_partners.learning import (  # noqa: F401 - the rules live there, one copy for fits and agents
    AI, DEFAULT_Q0, EWA, HUMAN, MODELS, LearningModel, Param, RandomChoice, RescorlaWagner, StaticPreference,
    card_log_probabilities,
)

from .io import split_cards

__all__ = [
    'Param', 'LearningModel', 'RandomChoice', 'StaticPreference', 'RescorlaWagner', 'EWA', 'MODELS',
    'Trials', 'prepare_trials', 'negative_log_likelihood', 'fit_pooled', 'fit_by_treatment', 'cluster_robust_cov',
    'fit_per_selector', 'summarize_per_selector', 'compare_models', 'initial_values_from_data', 'with_initial_value',
]


@dataclass
class Trials:
    """Decisions as arrays, selectors × trials (× cards); built by :func:`prepare_trials`.

    kinds     int (S, T, C): 1 = AI card, 0 = human card, -1 = no card (padding)
    ai_badge  float (S, T, C): 1 where the card carried the badge 'AI'
    chosen    int (S, T): 0-based display position of the chosen card, -1 = no choice / not used
    reward    float (S, T): return share of the chosen partner, NaN if undefined
    selectors list of selector ids, in row order
    treatment list of each selector's treatment (first trial)
    """
    kinds: np.ndarray
    ai_badge: np.ndarray
    chosen: np.ndarray
    reward: np.ndarray
    selectors: list
    treatment: list = field(default_factory=list)

    @property
    def n_obs(self) -> np.ndarray:
        """Choices per selector that enter the likelihood."""
        return (self.chosen >= 0).sum(axis=1)

    human_badge: np.ndarray | None = None  # (S,) True if the selector ever saw a 'Human' badge

    @property
    def saw_badges(self) -> np.ndarray:
        """True for selectors who ever saw a badge (only they inform the identity bias)."""
        saw = self.ai_badge.sum(axis=(1, 2)) > 0
        return saw if self.human_badge is None else saw | self.human_badge

    def subset(self, rows) -> 'Trials':
        rows = np.asarray(rows)
        return Trials(self.kinds[rows], self.ai_badge[rows], self.chosen[rows], self.reward[rows],
                      [self.selectors[i] for i in rows], [self.treatment[i] for i in rows],
                      None if self.human_badge is None else self.human_badge[rows])


def prepare_trials(decisions: pd.DataFrame) -> Trials:
    """Arrange validated decisions (see :func:`analysis.io.load_decisions`) as :class:`Trials`.

    Excluded decisions (no choice) stay as trials with ``chosen = -1`` so the sequence of rounds is
    kept; they add nothing to the likelihood and update nothing.
    """
    data = decisions.sort_values(['selector_id', 'round'], kind='stable')
    selectors = list(dict.fromkeys(data['selector_id']))
    row_of = {s: i for i, s in enumerate(selectors)}
    rows = data['selector_id'].map(row_of).to_numpy()
    trial = data.groupby('selector_id', sort=False).cumcount().to_numpy()
    kinds_lists = split_cards(data['offered_kinds'])
    badge_lists = data['offered_badges'].astype(str).map(lambda s: s.split(';'))
    n_cards = max(1, int(kinds_lists.map(len).max()))
    S, T = len(selectors), int(trial.max()) + 1
    kinds = np.full((S, T, n_cards), -1, dtype=np.int8)
    ai_badge = np.zeros((S, T, n_cards))
    human_badge = np.zeros(S, dtype=bool)
    for r, t, ks, bs in zip(rows, trial, kinds_lists, badge_lists):
        kinds[r, t, :len(ks)] = [AI if k == 'ai' else HUMAN for k in ks]
        for c, b in enumerate(bs[:len(ks)]):
            if b == 'AI':
                ai_badge[r, t, c] = 1.0
            elif b == 'Human':
                human_badge[r] = True
    chosen = np.full((S, T), -1, dtype=np.int64)
    reward = np.full((S, T), np.nan)
    usable = data['chose_ai'].notna().to_numpy() & ~data['excluded_from_fit'].to_numpy(dtype=bool)
    position = data['chosen_position'].to_numpy()
    chosen[rows[usable], trial[usable]] = position[usable].astype(np.int64) - 1
    reward[rows[usable], trial[usable]] = data['return_share'].to_numpy(dtype=float)[usable]
    treatment = data.groupby('selector_id', sort=False)['treatment'].first().reindex(selectors).tolist()
    return Trials(kinds, ai_badge, chosen, reward, selectors, treatment, human_badge)


# ---------------------------------------------------------------------------------------------
# likelihood
# ---------------------------------------------------------------------------------------------
def _theta_dict(model: LearningModel, theta: np.ndarray, n: int) -> dict:
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    theta = np.broadcast_to(theta, (n, len(model.params)))
    return {name: theta[:, i] for i, name in enumerate(model.params)}


def initial_values_from_data(trials: Trials) -> np.ndarray:
    """q0='data': per selector, the mean over its treatment of the return share of each selector's first
    observed choice (round-1 payoffs; a selector who timed out starts from its first choice). 1/3 where a
    treatment has no such return. Returns an array of length S."""
    has = np.isfinite(trials.reward) & (trials.chosen >= 0)
    first = np.where(has.any(axis=1), trials.reward[np.arange(has.shape[0]), has.argmax(axis=1)], np.nan)
    treatment = np.asarray(trials.treatment if trials.treatment else [''] * len(first), dtype=object)
    out = np.full(len(first), DEFAULT_Q0)
    for t in dict.fromkeys(treatment):
        rows = treatment == t
        if np.isfinite(first[rows]).any():
            out[rows] = np.nanmean(first[rows])
    return out


def with_initial_value(model: LearningModel, trials: Trials) -> LearningModel:
    """The model with q0='data' resolved on ``trials`` (per treatment); any other model unchanged."""
    if not (isinstance(model.q0, str) and model.q0 == 'data'):
        return model
    import copy
    resolved = copy.copy(model)
    resolved.q0 = initial_values_from_data(trials)[:, None]
    return resolved


def _initial_value_used(model: LearningModel, trials: Trials) -> float:
    """The q0 a pooled fit used (the mean over selectors for 'data'; NaN for 'free', which is estimated)."""
    if model.q0_source == 'free':
        return np.nan
    return float(np.mean(with_initial_value(model, trials).q0)) if len(trials.selectors) else np.nan


def negative_log_likelihood(model: LearningModel, theta, trials: Trials, gradient: bool = False):
    """Negative log-likelihood per selector (array of length S) for parameters ``theta``.

    theta: shape (n_params,) for one set shared by all, or (S, n_params) for one set per selector.
    With gradient=True returns (nll, grad) with grad (S, n_params), the exact derivative.
    """
    S, T, _ = trials.kinds.shape
    model = with_initial_value(model, trials)
    params = _theta_dict(model, theta, S)
    state = model.initial_state(S, params)
    nll = np.zeros(S)
    grad = np.zeros((S, len(model.params)))
    rows = np.arange(S)
    for t in range(T):
        kinds = trials.kinds[:, t, :]
        chosen = trials.chosen[:, t]
        made = chosen >= 0
        u, du = model.utilities(state, params, kinds, trials.ai_badge[:, t, :])
        logp = card_log_probabilities(u, kinds)
        position = np.where(made, chosen, 0)
        nll -= np.where(made, logp[rows, position], 0.0)
        if gradient and grad.shape[1]:
            p = np.exp(logp)
            expected = np.einsum('sc,scp->sp', p, np.where((kinds >= 0)[:, :, None], du, 0.0))
            grad -= np.where(made[:, None], du[rows, position] - expected, 0.0)
        chosen_kind = np.clip(kinds[rows, position], 0, 1).astype(np.int64)
        reward = trials.reward[:, t]
        state = model.update(state, params, chosen_kind, reward, made & np.isfinite(reward))
    return (nll, grad) if gradient else nll


def _bias_informed(model: LearningModel, trials: Trials) -> np.ndarray:
    """Per selector: does its data inform the identity bias? Only with badges, and in the static model
    only if its badges do not follow the kind (they always do within one treatment)."""
    informed = trials.saw_badges.copy()
    if isinstance(model, StaticPreference):
        offered = trials.kinds >= 0
        is_ai, badge = trials.kinds == AI, trials.ai_badge > 0
        same = np.where(offered, badge == is_ai, True).all(axis=(1, 2))
        opposite = np.where(offered, badge != is_ai, True).all(axis=(1, 2))
        informed &= ~(same | opposite)
    return informed


def _n_free(model: LearningModel, trials: Trials) -> np.ndarray:
    """Parameters per selector that the data can inform (bias needs badges)."""
    n = np.full(len(trials.selectors), len(model.params))
    if 'bias' in model.params:
        n = n - (~_bias_informed(model, trials)).astype(int)
    return n


def _starts(model: LearningModel, n_starts: int, rng: np.random.Generator, size=None) -> list:
    """The declared init first, then random points (beta kept moderate so starts are not flat)."""
    starts = [model.init() if size is None else np.tile(model.init(), (size, 1))]
    for _ in range(max(0, n_starts - 1)):
        point = []
        for name, p in model.params.items():
            upper = min(p.upper, 15.0) if name == 'beta' else p.upper
            point.append(rng.uniform(p.lower, upper, size))
        starts.append(np.array(point) if size is None else np.column_stack(point))
    return starts


def _badge_follows_kind(trials: Trials) -> bool:
    """True if on every offered card the badge 'AI' is the true kind (disclosed) or its opposite
    (false_label) or absent: then a fixed preference by kind and one by badge cannot be told apart."""
    offered = trials.kinds >= 0
    is_ai = (trials.kinds == AI)[offered]
    badge = trials.ai_badge[offered] > 0
    return bool(np.all(badge == is_ai) or np.all(badge != is_ai) or not badge.any())


def _identified(model: LearningModel, trials: Trials) -> np.ndarray:
    """Which parameters the data can inform: the identity bias only if somebody saw a badge, and, in
    the static model (no learned values to separate it from), only if badges do not follow the kind."""
    if 'bias' not in model.params:
        return np.ones(len(model.params), dtype=bool)
    informed = trials.saw_badges.any()
    if isinstance(model, StaticPreference):
        informed = informed and not _badge_follows_kind(trials)
    return np.array([name != 'bias' or informed for name in model.params], dtype=bool)


def _on_bound(model: LearningModel, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(at lower, at upper) per parameter, within 1e-4 of the bound's range (an optimizer's tolerance)."""
    lower = np.array([b[0] for b in model.bounds()])
    upper = np.array([b[1] for b in model.bounds()])
    tol = 1e-4 * (upper - lower)
    return theta <= lower + tol, theta >= upper - tol


def fit_pooled(model: LearningModel, trials: Trials, n_starts: int = 5, seed: int = 0, se: bool = False,
               warm_start: dict | None = None) -> dict:
    """One parameter set for all selectors in ``trials``, by maximum likelihood from several starts.

    ``warm_start`` (parameter name → value, e.g. a related model's estimates) is tried first, besides the
    ``n_starts`` usual ones; a parameter it lacks (or gives as NaN) starts at its declared init.

    Give it one treatment's selectors (:func:`fit_by_treatment` does): hidden and disclosed selectors
    pooled share one set, and the more numerous ones set it. A parameter the data cannot inform (the
    identity bias when nobody saw a badge) is held at 0 and reported as NaN.

    Returns
    -------
    dict with ``model``, one entry per parameter (NaN if not identified), ``log_lik``, ``n_obs``,
    ``n_selectors`` (with at least one choice), ``n_params`` (identified ones), ``aic``, ``bic``,
    ``converged`` (the optimizer's own report), ``at_bound`` (comma-separated names of estimates on a
    bound, '' if none: their SEs and the usual asymptotics do not apply), ``q0_source`` ('fixed', 'data',
    'free') and ``initial_value`` (the q0 used: the mean over selectors for 'data', the estimate for
    'free'). With ``se=True`` also
    ``se_<parameter>``: selector-clustered sandwich SEs (:func:`cluster_robust_cov`), NaN for a
    parameter on a bound or not identified.
    """
    n_obs = int(trials.n_obs.sum())
    n_selectors = int((trials.n_obs > 0).sum())
    k = len(model.params)
    if k == 0:
        log_lik = -float(negative_log_likelihood(model, np.zeros(0), trials).sum())
        return _summary(model.name, {}, log_lik, n_obs, 0, True) | {'n_selectors': n_selectors, 'at_bound': '',
                                                                     'q0_source': model.q0_source,
                                                                     'initial_value': np.nan}

    identified = _identified(model, trials)
    bounds = [b if ok else (0.0, 0.0) for b, ok in zip(model.bounds(), identified)]

    def objective(theta):
        nll, grad = negative_log_likelihood(model, theta, trials, gradient=True)
        return float(nll.sum()), grad.sum(axis=0)

    starts = _starts(model, n_starts, np.random.default_rng(seed))
    if warm_start:
        warm = np.array([warm_start.get(name, np.nan) for name in model.params], dtype=float)
        starts.insert(0, np.clip(np.where(np.isnan(warm), model.init(), warm),
                                 [b[0] for b in model.bounds()], [b[1] for b in model.bounds()]))
    best = None
    for start in starts:
        start = np.where(identified, start, 0.0)
        result = optimize.minimize(objective, start, jac=True, method='L-BFGS-B', bounds=bounds)
        if best is None or result.fun < best.fun:
            best = result
    theta = best.x
    low, high = _on_bound(model, theta)
    at_bound = (low | high) & identified
    params = {name: (float(v) if ok else np.nan) for name, v, ok in zip(model.params, theta, identified)}
    out = _summary(model.name, params, -float(best.fun), n_obs, int(identified.sum()), bool(best.success))
    out['n_selectors'] = n_selectors
    out['at_bound'] = ','.join(name for name, b in zip(model.params, at_bound) if b)
    out['q0_source'] = model.q0_source
    out['initial_value'] = params['q0'] if model.q0_source == 'free' else _initial_value_used(model, trials)
    if se:
        free = identified & ~at_bound
        cov = cluster_robust_cov(model, trials, theta, free)
        ses = np.full(k, np.nan)
        ses[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        out.update({f'se_{name}': float(v) for name, v in zip(model.params, ses)})
    return out


def cluster_robust_cov(model: LearningModel, trials: Trials, theta, free=None) -> np.ndarray:
    """Selector-clustered sandwich covariance of the pooled MLE ``theta`` over the ``free`` parameters.

    V = c · H⁻¹ (Σ_i s_i s_iᵀ) H⁻¹, with s_i the score (exact gradient) of selector i's whole sequence of
    choices, H the Hessian of the total negative log-likelihood (central differences of the exact
    gradient) and c = G/(G−1) · (N−1)/(N−K) (G selectors with a choice, N choices, K free parameters;
    statsmodels' default for cluster-robust covariances). A selector's choices are dependent through its
    learned values, so the selector is the cluster. Parameters on a bound or not identified should be
    left out of ``free``: the sandwich assumes an interior optimum.

    Returns
    -------
    (K, K) array over the free parameters, in declaration order.
    """
    theta = np.asarray(theta, dtype=float)
    free = np.ones(theta.size, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    index = np.flatnonzero(free)
    K = index.size
    if K == 0:
        return np.zeros((0, 0))
    _, scores = negative_log_likelihood(model, theta, trials, gradient=True)
    lower = np.array([b[0] for b in model.bounds()])
    upper = np.array([b[1] for b in model.bounds()])
    hessian = np.empty((K, K))
    for j, p in enumerate(index):
        room = min(theta[p] - lower[p], upper[p] - theta[p])
        h = min(1e-5 * max(1.0, abs(theta[p])), 0.5 * room) if room > 0 else 1e-7
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        g_up = negative_log_likelihood(model, up, trials, gradient=True)[1].sum(axis=0)
        g_down = negative_log_likelihood(model, down, trials, gradient=True)[1].sum(axis=0)
        hessian[:, j] = (g_up - g_down)[index] / (2 * h)
    hessian = 0.5 * (hessian + hessian.T)
    used = trials.n_obs > 0
    s = scores[used][:, index]
    G, N = int(used.sum()), int(trials.n_obs.sum())
    meat = s.T @ s
    if G > 1 and N > K:
        meat *= G / (G - 1) * (N - 1) / (N - K)
    bread = np.linalg.pinv(hessian)
    return bread @ meat @ bread


def fit_by_treatment(model: LearningModel, trials: Trials, n_starts: int = 5, seed: int = 0,
                     min_selectors: int = 1, warm_starts: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit ``model`` separately in each treatment (its own parameter set), with clustered SEs.

    Parameters
    ----------
    warm_starts : treatment → {parameter: value}, an extra start per treatment (see :func:`fit_pooled`).
    min_selectors : below this many selectors (with a choice) in a treatment its SEs and CIs are withheld
        (NaN) and ``se_withheld`` is True: a sandwich over a handful of clusters is not a standard error.

    Returns
    -------
    (estimates, fits).
    estimates: one row per treatment × identified parameter (the identity bias has no row in a treatment
    without badges): ``model``, ``treatment``, ``parameter``, ``estimate``, ``se`` (selector-clustered
    sandwich), ``ci_low``, ``ci_high`` (Wald 95%), ``at_bound`` (estimate on a bound of its range: no SE),
    ``n_selectors``.
    fits: one row per treatment: ``model``, ``treatment``, ``n_selectors``, ``n_obs``, ``n_params``,
    ``log_lik``, ``aic``, ``bic``, ``converged``, ``at_bound`` (names), ``se_withheld``, ``q0_source``,
    ``initial_value`` (see :func:`fit_pooled`; with ``q0='data'`` each treatment gets its own).
    """
    est_rows, fit_rows = [], []
    treatments = list(dict.fromkeys(trials.treatment))
    for treatment in treatments:
        part = trials.subset([i for i, t in enumerate(trials.treatment) if t == treatment])
        fit = fit_pooled(model, part, n_starts=n_starts, seed=seed, se=True,
                         warm_start=(warm_starts or {}).get(treatment))
        withheld = fit['n_selectors'] < min_selectors
        bounded = set(filter(None, fit['at_bound'].split(',')))
        for name in model.params:
            if np.isnan(fit[name]):
                continue  # not identified here: neither estimated nor printed
            se = np.nan if withheld else fit[f'se_{name}']
            est_rows.append(dict(model=model.name, treatment=treatment, parameter=name, estimate=fit[name], se=se,
                                 ci_low=fit[name] - 1.959964 * se, ci_high=fit[name] + 1.959964 * se,
                                 at_bound=name in bounded, n_selectors=fit['n_selectors']))
        fit_rows.append({k: fit[k] for k in ('model', 'n_selectors', 'n_obs', 'n_params', 'log_lik', 'aic', 'bic',
                                             'converged', 'at_bound', 'q0_source', 'initial_value')}
                        | {'treatment': treatment, 'se_withheld': bool(withheld)})
    est_columns = ['model', 'treatment', 'parameter', 'estimate', 'se', 'ci_low', 'ci_high', 'at_bound', 'n_selectors']
    fit_columns = ['model', 'treatment', 'n_selectors', 'n_obs', 'n_params', 'log_lik', 'aic', 'bic', 'converged',
                   'at_bound', 'se_withheld', 'q0_source', 'initial_value']
    return pd.DataFrame(est_rows, columns=est_columns), pd.DataFrame(fit_rows, columns=fit_columns)


def _summary(name, params, log_lik, n_obs, n_params, converged) -> dict:
    out = {'model': name, **{k: float(v) for k, v in params.items()}}
    out.update(log_lik=float(log_lik), n_obs=int(n_obs), n_params=int(n_params),
               aic=float(2 * n_params - 2 * log_lik), bic=float(n_params * np.log(max(n_obs, 1)) - 2 * log_lik),
               converged=converged)
    return out


def _batched_newton(model, trials, theta, lower, upper, maxiter=60, tol=1e-7):
    """Minimize every selector's own likelihood at once: damped (Levenberg–Marquardt) Newton steps.

    The Hessian comes from forward differences of the exact gradient (n_params extra evaluations);
    parameters on a bound with the gradient pointing outwards are held (projected Newton).
    """
    S, P = theta.shape
    f, g = negative_log_likelihood(model, theta, trials, gradient=True)
    damping = np.full(S, 1e-3)
    active = np.ones(S, dtype=bool)
    eye = np.eye(P)
    for _ in range(maxiter):
        if not active.any():
            break
        h = 1e-6 * np.maximum(1.0, np.abs(theta))
        h = np.where(theta + h > upper, -h, h)  # step inwards at an upper bound
        hessian = np.empty((S, P, P))
        for p in range(P):
            shifted = theta.copy()
            shifted[:, p] += h[:, p]
            hessian[:, :, p] = (negative_log_likelihood(model, shifted, trials, gradient=True)[1] - g) / h[:, p:p + 1]
        hessian = 0.5 * (hessian + hessian.transpose(0, 2, 1))
        held = ((theta <= lower + 1e-10) & (g > 0)) | ((theta >= upper - 1e-10) & (g < 0))
        free = ~held
        scale = np.maximum(np.abs(np.diagonal(hessian, axis1=1, axis2=2)), 1e-8)
        system = hessian * (free[:, :, None] & free[:, None, :]) + eye * held[:, :, None]
        system = system + damping[:, None, None] * eye * scale[:, :, None]
        step = -np.linalg.solve(system, np.where(free, g, 0.0)[:, :, None])[:, :, 0]
        step = np.where(active[:, None], step, 0.0)
        candidate = np.clip(theta + step, lower, upper)
        f_new, g_new = negative_log_likelihood(model, candidate, trials, gradient=True)
        better = (f_new < f) & active
        improvement = np.where(better, f - f_new, 0.0)
        theta[better], g[better] = candidate[better], g_new[better]
        f = np.where(better, f_new, f)
        damping = np.where(better, np.maximum(damping / 4.0, 1e-6), damping * 8.0)
        projected = np.where(free, g, 0.0)
        done = (better & (improvement < tol)) | (np.abs(projected).max(axis=1) < 1e-6) | (damping > 1e8)
        active &= ~done
    return theta, f


def fit_per_selector(model: LearningModel, trials: Trials, n_starts: int = 3, seed: int = 0,
                     maxiter: int = 60, progress: bool = False) -> pd.DataFrame:
    """One parameter set per selector, all selectors optimized together (vectorized).

    Returns
    -------
    DataFrame, one row per selector: ``selector_id``, ``treatment``, one column per parameter (``bias``
    NaN for selectors who never saw a badge: not identified), ``log_lik``, ``n_obs``, ``n_params`` (bias
    counts only for selectors who saw badges), ``aic``, ``bic``, ``at_bound`` (names of this selector's
    estimates on a bound, '' if none; :func:`summarize_per_selector` counts them).
    """
    S, k = len(trials.selectors), len(model.params)
    n_obs = trials.n_obs
    n_params = _n_free(model, trials)
    if k == 0:
        best_nll = negative_log_likelihood(model, np.zeros(0), trials)
        best_theta = np.zeros((S, 0))
    else:
        lower = np.array([b[0] for b in model.bounds()])
        upper = np.array([b[1] for b in model.bounds()])
        best_nll = np.full(S, np.inf)
        best_theta = np.tile(model.init(), (S, 1))
        starts = _starts(model, n_starts, np.random.default_rng(seed), size=S)
        if progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, desc=f'{model.name} per selector', unit='start')
        for start in starts:
            theta, nll = _batched_newton(model, trials, np.clip(start, lower, upper), lower, upper, maxiter=maxiter)
            better = nll < best_nll
            best_nll[better] = nll[better]
            best_theta[better] = theta[better]
    low, high = _on_bound(model, best_theta)
    table = pd.DataFrame(best_theta, columns=list(model.params))
    if 'bias' in table:
        # A selector who never saw a badge gives the bias no information: its value would be the start.
        uninformed = ~_bias_informed(model, trials)
        table.loc[uninformed, 'bias'] = np.nan
        column = list(model.params).index('bias')
        low[uninformed, column] = high[uninformed, column] = False
    names = np.array(list(model.params))
    bounded = [','.join(names[row]) for row in (low | high)] if k else [''] * S
    table.insert(0, 'treatment', trials.treatment)
    table.insert(0, 'selector_id', trials.selectors)
    table['log_lik'] = -best_nll
    table['n_obs'] = n_obs
    table['n_params'] = n_params
    table['aic'] = 2 * n_params + 2 * best_nll
    table['bic'] = n_params * np.log(np.maximum(n_obs, 1)) + 2 * best_nll
    table['at_bound'] = bounded
    return table


def summarize_per_selector(table: pd.DataFrame, model: LearningModel) -> pd.DataFrame:
    """Per-selector estimates by treatment and parameter, with how many selectors sit on a bound.

    Returns
    -------
    DataFrame: ``treatment``, ``parameter``, ``n_selectors`` (with an estimate), ``median``, ``q25``,
    ``q75``, ``n_at_lower``, ``n_at_upper`` (selectors whose estimate is on that bound: with 10–20
    choices each, many are, and their estimates say little beyond a direction).
    """
    rows = []
    for treatment, part in table.groupby('treatment', sort=False):
        for name, p in model.params.items():
            values = part[name].dropna()
            if values.empty:
                continue
            tol = 1e-4 * (p.upper - p.lower)
            rows.append(dict(treatment=treatment, parameter=name, n_selectors=len(values), median=values.median(),
                             q25=values.quantile(0.25), q75=values.quantile(0.75),
                             n_at_lower=int((values <= p.lower + tol).sum()),
                             n_at_upper=int((values >= p.upper - tol).sum())))
    return pd.DataFrame(rows, columns=['treatment', 'parameter', 'n_selectors', 'median', 'q25', 'q75', 'n_at_lower',
                                       'n_at_upper'])


def compare_models(trials: Trials, models=None, per_selector: bool = False, n_starts: int = 5, seed: int = 0,
                   progress: bool = False, by_treatment: bool = True,
                   min_selectors: int = 1) -> tuple[pd.DataFrame, dict]:
    """Fit several models and compare them by AIC/BIC.

    Parameters
    ----------
    trials : from :func:`prepare_trials`.
    models : list of :class:`LearningModel` (default: random, static, Rescorla–Wagner, EWA).
    per_selector : also fit one parameter set per selector (sums log-likelihoods and parameters).
    by_treatment : True (default): each treatment gets its own parameter set (:func:`fit_by_treatment`);
        the comparison row ``fit='per_treatment'`` sums log-likelihoods and parameters over treatments.
        False: one set over everybody (``fit='pooled'``; only sensible within one treatment).
    min_selectors : passed to :func:`fit_by_treatment` (SEs withheld below it).

    Returns
    -------
    (table, fits): table has columns ``model``, ``fit`` ('per_treatment' / 'pooled' / 'per_selector'),
    ``n_params``, ``n_obs``, ``log_lik``, ``aic``, ``bic``, ``delta_aic``, ``delta_bic`` (relative to the best
    row), ``aic_weight``; fits maps (model name, 'per_treatment') to (estimates, fits) DataFrames of
    :func:`fit_by_treatment`, (model name, 'pooled') to the :func:`fit_pooled` dict and
    (model name, 'per_selector') to the per-selector DataFrame.
    """
    models = models if models is not None else [RandomChoice(), StaticPreference(), RescorlaWagner(), EWA()]
    rows, fits = [], {}
    iterator = models
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(models, desc='learning models', unit='model')
    for model in iterator:
        if by_treatment:
            estimates, per_treatment = fit_by_treatment(model, trials, n_starts=n_starts, seed=seed,
                                                        min_selectors=min_selectors)
            fits[(model.name, 'per_treatment')] = (estimates, per_treatment)
            log_lik, n_params = float(per_treatment['log_lik'].sum()), int(per_treatment['n_params'].sum())
            n_obs = int(per_treatment['n_obs'].sum())
            rows.append(dict(model=model.name, fit='per_treatment', n_params=n_params, n_obs=n_obs, log_lik=log_lik,
                             aic=2 * n_params - 2 * log_lik, bic=n_params * np.log(max(n_obs, 1)) - 2 * log_lik))
        else:
            pooled = fit_pooled(model, trials, n_starts=n_starts, seed=seed)
            fits[(model.name, 'pooled')] = pooled
            rows.append({k: pooled[k] for k in ('model', 'n_params', 'n_obs', 'log_lik', 'aic', 'bic')}
                        | {'fit': 'pooled'})
        if per_selector and model.params:
            table = fit_per_selector(model, trials, n_starts=max(1, min(n_starts, 3)), seed=seed)
            fits[(model.name, 'per_selector')] = table
            log_lik = float(table['log_lik'].sum())
            n_params = int(table['n_params'].sum())
            n_obs = int(table['n_obs'].sum())
            rows.append(dict(model=model.name, fit='per_selector', n_params=n_params, n_obs=n_obs, log_lik=log_lik,
                             aic=2 * n_params - 2 * log_lik, bic=n_params * np.log(n_obs) - 2 * log_lik))
    table = pd.DataFrame(rows)[['model', 'fit', 'n_params', 'n_obs', 'log_lik', 'aic', 'bic']]
    table['delta_aic'] = table['aic'] - table['aic'].min()
    table['delta_bic'] = table['bic'] - table['bic'].min()
    weights = np.exp(-0.5 * table['delta_aic'])
    table['aic_weight'] = weights / weights.sum()
    return table.sort_values('aic', kind='stable').reset_index(drop=True), fits
