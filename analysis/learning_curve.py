"""Parametric learning curves of the AI-choice probability, fitted by maximum likelihood.

    p(t) = p_inf − (p_inf − p0) · exp(−k (t − 1))        t = round (1-based)

p0 is the probability of choosing an AI candidate in round 1, p_inf the asymptote, k the rate
(per round) at which the gap closes. The likelihood is binomial over each treatment's binary choices;
since p depends only on the round it is computed from per-round counts (fast enough for bootstraps).

Standard errors are selector-clustered sandwiches (scores per selector around the numerical Hessian);
``se_model``, the inverse Hessian alone, treats choices as independent. The participant-clustered
bootstrap (resampling selectors) gives CIs, and is what the treatment differences use.
When p0 ≈ p_inf the rate k is not identified: its SE is then NaN or huge, and the likelihood-ratio
test against a flat curve (df = 2) is the right question to ask first.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.tools.numdiff import approx_hess3

__all__ = ['curve_probability', 'round_counts', 'fit_curve_counts', 'fit_learning_curves',
           'compare_learning_curves', 'PARAMETERS']

PARAMETERS = ('p0', 'p_inf', 'k')
_EPS = 1e-6
BOUNDS = [(_EPS, 1 - _EPS), (_EPS, 1 - _EPS), (0.0, 10.0)]


def curve_probability(t, p0: float, p_inf: float, k: float):
    """p(t) = p_inf − (p_inf − p0)·exp(−k(t−1)) for round(s) t (1-based)."""
    t = np.asarray(t, dtype=float)
    return p_inf - (p_inf - p0) * np.exp(-k * (t - 1.0))


def round_counts(data: pd.DataFrame, round: str = 'round', dv: str = 'chose_ai') -> pd.DataFrame:
    """Per round: ``round``, ``n`` choices, ``n_ai`` AI choices (rows with an empty dv are left out)."""
    data = data[data[dv].notna()]
    grouped = data.groupby(round)[dv]
    return pd.DataFrame({'n': grouped.size(), 'n_ai': grouped.sum()}).reset_index().rename(columns={round: 'round'})


def _nll(theta, rounds, n, n_ai):
    p = np.clip(curve_probability(rounds, *theta), 1e-12, 1 - 1e-12)
    return -float(np.sum(n_ai * np.log(p) + (n - n_ai) * np.log1p(-p)))


def _nll_and_grad(theta, rounds, n, n_ai):
    """Negative log-likelihood and its exact gradient in (p0, p_inf, k)."""
    p0, p_inf, k = theta
    decay = np.exp(-k * (rounds - 1.0))
    p = np.clip(p_inf - (p_inf - p0) * decay, 1e-12, 1 - 1e-12)
    d_p = -(n_ai / p - (n - n_ai) / (1.0 - p))
    grad = np.array([np.sum(d_p * decay), np.sum(d_p * (1.0 - decay)),
                     np.sum(d_p * (p_inf - p0) * (rounds - 1.0) * decay)])
    return -float(np.sum(n_ai * np.log(p) + (n - n_ai) * np.log1p(-p))), grad


def _flat_log_lik(n, n_ai):
    p = np.clip(n_ai.sum() / n.sum(), 1e-12, 1 - 1e-12)
    return float(n_ai.sum() * np.log(p) + (n.sum() - n_ai.sum()) * np.log1p(-p))


def _starts(rounds, n, n_ai, n_starts, rng):
    share = np.clip(n_ai / np.maximum(n, 1), 0.02, 0.98)
    first, last = share[np.argmin(rounds)], share[np.argmax(rounds)]
    starts = [np.array([first, last, 0.3]), np.array([share.mean(), share.mean(), 0.1])]
    for _ in range(max(0, n_starts - 2)):
        starts.append(np.array([rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(0.01, 3.0)]))
    return starts[:max(1, n_starts)]


def fit_curve_counts(rounds, n, n_ai, n_starts: int = 5, seed: int = 0, start=None) -> dict:
    """MLE of (p0, p_inf, k) from per-round counts.

    Returns dict with ``p0``, ``p_inf``, ``k``, ``log_lik``, ``log_lik_flat``, ``success`` and
    ``x`` (the estimate as an array).
    """
    rounds, n, n_ai = (np.asarray(a, dtype=float) for a in (rounds, n, n_ai))
    rng = np.random.default_rng(seed)
    starts = [np.asarray(start, dtype=float)] if start is not None else []
    starts += _starts(rounds, n, n_ai, n_starts, rng)
    best = None
    for x0 in starts:
        x0 = np.clip(x0, [b[0] for b in BOUNDS], [b[1] for b in BOUNDS])
        result = optimize.minimize(_nll_and_grad, x0, args=(rounds, n, n_ai), jac=True, method='L-BFGS-B',
                                   bounds=BOUNDS)
        if best is None or result.fun < best.fun:
            best = result
    return dict(p0=best.x[0], p_inf=best.x[1], k=best.x[2], log_lik=-best.fun,
                log_lik_flat=_flat_log_lik(n, n_ai), success=bool(best.success), x=best.x)


def _hessian_se(x, rounds, n, n_ai) -> np.ndarray:
    """SEs from the inverse Hessian; NaN where the estimate is on a bound or the Hessian is singular."""
    try:
        hessian = approx_hess3(x, _nll, args=(rounds, n, n_ai))
        cov = np.linalg.inv(hessian)
        se = np.sqrt(np.diag(cov))
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return np.full(3, np.nan)
    se = np.where(np.isfinite(se) & (np.diag(cov) > 0), se, np.nan)
    on_bound = np.array([abs(x[i] - lo) < 1e-4 or abs(x[i] - hi) < 1e-4 for i, (lo, hi) in enumerate(BOUNDS)])
    return np.where(on_bound, np.nan, se)


def _cluster_se(x, rounds, n_mat, ai_mat) -> np.ndarray:
    """Selector-clustered sandwich SEs: H⁻¹ (Σ_i s_i s_iᵀ) H⁻¹ · G/(G−1)·(N−1)/(N−K), s_i the score of
    selector i's choices (exact), H the Hessian of the total; NaN on a bound or with fewer than 2 selectors."""
    p0, p_inf, k = x
    G = int((n_mat.sum(axis=1) > 0).sum())
    N = float(n_mat.sum())
    if G < 2:
        return np.full(3, np.nan)
    decay = np.exp(-k * (rounds - 1.0))
    p = np.clip(p_inf - (p_inf - p0) * decay, 1e-12, 1 - 1e-12)
    d_p = -(ai_mat / p - (n_mat - ai_mat) / (1.0 - p))  # (S, R)
    scores = np.stack([d_p @ decay, d_p @ (1.0 - decay), d_p @ ((p_inf - p0) * (rounds - 1.0) * decay)], axis=1)
    try:
        hessian = approx_hess3(x, _nll, args=(rounds, n_mat.sum(axis=0), ai_mat.sum(axis=0)))
        bread = np.linalg.inv(hessian)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return np.full(3, np.nan)
    cov = bread @ (scores.T @ scores) @ bread * G / (G - 1) * (N - 1) / (N - 3)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    se = np.where(np.isfinite(se) & (np.diag(cov) > 0), se, np.nan)
    on_bound = np.array([abs(x[i] - lo) < 1e-4 or abs(x[i] - hi) < 1e-4 for i, (lo, hi) in enumerate(BOUNDS)])
    return np.where(on_bound, np.nan, se)


def _selector_matrix(data, selector, round, dv):
    """Selectors × rounds matrices of choices and AI choices, and the round numbers."""
    data = data[data[dv].notna()]
    n = data.pivot_table(index=selector, columns=round, values=dv, aggfunc='size', fill_value=0)
    n_ai = data.pivot_table(index=selector, columns=round, values=dv, aggfunc='sum', fill_value=0)
    n_ai = n_ai.reindex_like(n).fillna(0)
    return n.columns.to_numpy(dtype=float), n.to_numpy(dtype=float), n_ai.to_numpy(dtype=float)


def _bootstrap(rounds, n_mat, ai_mat, estimate, n_boot, rng) -> np.ndarray:
    """Cluster bootstrap over selectors: (n_boot, 3) parameter draws."""
    n_sel = n_mat.shape[0]
    draws = np.empty((n_boot, 3))
    weights = rng.multinomial(n_sel, np.full(n_sel, 1.0 / n_sel), size=n_boot)
    for b in range(n_boot):
        n, n_ai = weights[b] @ n_mat, weights[b] @ ai_mat
        draws[b] = fit_curve_counts(rounds, n, n_ai, n_starts=1, start=estimate)['x']
    return draws


def fit_learning_curves(data: pd.DataFrame, treatment: str = 'treatment', round: str = 'round',
                        dv: str = 'chose_ai', selector: str = 'selector_id', n_starts: int = 5,
                        n_boot: int = 0, ci: float = 0.95, seed: int = 0, progress: bool = False):
    """Fit the learning curve per treatment.

    Parameters
    ----------
    data : long DataFrame, one row per choice (rows with an empty ``dv`` are ignored).
    n_boot : selector-clustered bootstrap replicates for the CIs (0: Wald CIs from the Hessian SEs).

    Returns
    -------
    (params, fits)
    params : DataFrame with ``treatment``, ``parameter`` (p0, p_inf, k), ``estimate``, ``se``
        (selector-clustered sandwich; NaN on a bound), ``se_model`` (inverse Hessian: choices treated as
        independent), ``ci_low``, ``ci_high`` (cluster-bootstrap percentiles with n_boot, else Wald from
        ``se``), ``ci_method`` ('wald' or 'cluster_bootstrap').
    fits : DataFrame with ``treatment``, ``n_selectors``, ``n_choices``, ``log_lik``, ``log_lik_flat``,
        ``lr_stat``, ``lr_df`` (2), ``lr_p_value`` (likelihood-ratio test against a flat curve; like the
        Hessian SEs it treats choices as independent),
        ``converged``; and, with n_boot, ``boot`` is available via the ``attrs['boot']`` of params.
    """
    rng = np.random.default_rng(seed)
    z = stats.norm.ppf(0.5 + ci / 2)
    param_rows, fit_rows, boots = [], [], {}
    groups = list(data.groupby(treatment, sort=True))
    if progress:
        from tqdm.auto import tqdm
        groups = tqdm(groups, desc='learning curves', unit='treatment')
    for name, part in groups:
        rounds, n_mat, ai_mat = _selector_matrix(part, selector, round, dv)
        n, n_ai = n_mat.sum(axis=0), ai_mat.sum(axis=0)
        fit = fit_curve_counts(rounds, n, n_ai, n_starts=n_starts, seed=seed)
        se_model = _hessian_se(fit['x'], rounds, n, n_ai)
        se = _cluster_se(fit['x'], rounds, n_mat, ai_mat)
        if n_boot:
            draws = _bootstrap(rounds, n_mat, ai_mat, fit['x'], n_boot, rng)
            boots[name] = draws
            low, high = np.quantile(draws, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
            method = 'cluster_bootstrap'
        else:
            lower, upper = np.array(BOUNDS).T
            low, high = np.maximum(fit['x'] - z * se, lower), np.minimum(fit['x'] + z * se, upper)
            method = 'wald'
        for i, parameter in enumerate(PARAMETERS):
            param_rows.append(dict(treatment=name, parameter=parameter, estimate=fit['x'][i], se=se[i],
                                   se_model=se_model[i], ci_low=low[i], ci_high=high[i], ci_method=method))
        lr = max(0.0, 2 * (fit['log_lik'] - fit['log_lik_flat']))
        fit_rows.append(dict(treatment=name, n_selectors=n_mat.shape[0], n_choices=int(n.sum()),
                             log_lik=fit['log_lik'], log_lik_flat=fit['log_lik_flat'], lr_stat=lr, lr_df=2,
                             lr_p_value=float(stats.chi2.sf(lr, 2)), converged=fit['success']))
    params = pd.DataFrame(param_rows)
    params.attrs['boot'] = boots
    return params, pd.DataFrame(fit_rows)


def compare_learning_curves(data: pd.DataFrame, reference: str | None = None, treatment: str = 'treatment',
                            round: str = 'round', dv: str = 'chose_ai', selector: str = 'selector_id',
                            n_boot: int = 200, ci: float = 0.95, seed: int = 0, progress: bool = False,
                            params: pd.DataFrame | None = None):
    """Treatment differences in p0, p_inf and k (other treatment − reference).

    Treatments are independent groups of selectors, so each is bootstrapped separately (selectors
    resampled within treatment) and the difference taken replicate by replicate.

    Returns
    -------
    DataFrame with ``contrast`` ('disclosed - hidden', …), ``parameter``, ``difference``, ``se``, ``z``,
    ``p_value`` (normal), ``ci_low``, ``ci_high``. With bootstrap draws, ``se`` is the SD of the
    replicate differences and the CI their percentiles, both clustered by selector; with n_boot = 0,
    ``se`` is sqrt of the summed Hessian variances, which treat a selector's choices as independent
    and so are too small when selectors differ persistently.
    params : the ``params`` output of :func:`fit_learning_curves` on the same data, to reuse its fits
        and bootstrap draws instead of fitting again.
    """
    if params is None:
        params, _ = fit_learning_curves(data, treatment, round, dv, selector, n_boot=n_boot, ci=ci, seed=seed,
                                        progress=progress)
    names = list(dict.fromkeys(params['treatment']))
    if len(names) < 2:
        return pd.DataFrame(columns=['contrast', 'parameter', 'difference', 'se', 'z', 'p_value', 'ci_low', 'ci_high'])
    reference = reference if reference is not None else ('hidden' if 'hidden' in names else names[0])
    if reference not in names:
        raise ValueError(f'reference treatment {reference!r} not in the data ({names})')
    table = params.set_index(['treatment', 'parameter'])
    boots = params.attrs.get('boot', {})
    zq = stats.norm.ppf(0.5 + ci / 2)
    rows = []
    for other in names:
        if other == reference:
            continue
        for i, parameter in enumerate(PARAMETERS):
            a, b = table.loc[(other, parameter)], table.loc[(reference, parameter)]
            diff = a['estimate'] - b['estimate']
            if boots:
                d = boots[other][:, i] - boots[reference][:, i]
                se = float(np.std(d, ddof=1))
                low, high = np.quantile(d, [(1 - ci) / 2, (1 + ci) / 2])
            else:
                se = float(np.hypot(a['se'], b['se']))
                low, high = diff - zq * se, diff + zq * se
            zval = diff / se if se > 0 else np.nan
            rows.append(dict(contrast=f'{other} - {reference}', parameter=parameter, difference=diff, se=se, z=zval,
                             p_value=float(2 * stats.norm.sf(abs(zval))) if np.isfinite(zval) else np.nan,
                             ci_low=low, ci_high=high))
    return pd.DataFrame(rows)
