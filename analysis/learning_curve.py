"""Parametric learning curves of the AI-choice probability, fitted by maximum likelihood.

    p(t) = p_inf − (p_inf − p0) · exp(−k (t − 1))        t = round (1-based)

p0 is the probability of choosing an AI candidate in round 1, p_inf the asymptote, k the rate
(per round) at which the gap closes. The likelihood is binomial over each treatment's binary choices;
since p depends only on the round it is computed from per-round counts (fast enough for bootstraps).

Standard errors are selector-clustered sandwiches (scores per selector around the numerical Hessian);
``se_model``, the inverse Hessian alone, treats choices as independent. The participant-clustered
bootstrap (resampling selectors) gives CIs, and is what the treatment differences use.
Flat versus learning. When p0 = p_inf the curve is flat and k is not identified (nor p_inf apart from
p0): k runs to a bound, the SEs blow up, and the likelihood-ratio statistic against the flat model
p(t) = p has no chi-square(2) reference distribution (under the null, k exists only under the
alternative and the null sits on the boundary of the parameter space: Davies' problem). Each treatment is
therefore tested for learning by a **selector-permutation LR test**: each selector's choices are shuffled
across that selector's rounds (which keeps every selector's own AI share, so persistent differences
between selectors stay in, and removes any time trend), the curve refitted, and p = (1 + #{LR* ≥ LR}) /
(1 + n_perm) — never 0. The **selected model** is the exponential curve when its BIC (n = choices) is
below the flat model's *and* the permutation p is below ``alpha``; otherwise the flat curve (with fewer
than ``min_selectors`` selectors, or n_perm = 0, BIC alone). Under 'flat', p_inf and k are not identified
(``identified`` False) and the treatment's curve is the constant ``p_flat``.

:func:`compare_treatments` contrasts treatments on quantities identified under either model: the
AI-choice share in the first and the last ``k_rounds`` rounds and their difference (late − early), from
:func:`analysis.curves.early_late_shares`, and the plateau p_inf only where both treatments select the
exponential curve.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.tools.numdiff import approx_hess3

__all__ = ['curve_probability', 'round_counts', 'fit_curve_counts', 'fit_learning_curves',
           'compare_learning_curves', 'compare_treatments', 'selected_curve', 'PARAMETERS']

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


def _bootstrap(rounds, n_mat, ai_mat, estimate, n_boot, rng, progress=None) -> np.ndarray:
    """Cluster bootstrap over selectors: (n_boot, 3) parameter draws."""
    n_sel = n_mat.shape[0]
    draws = np.empty((n_boot, 3))
    weights = rng.multinomial(n_sel, np.full(n_sel, 1.0 / n_sel), size=n_boot)
    for b in range(n_boot):
        n, n_ai = weights[b] @ n_mat, weights[b] @ ai_mat
        draws[b] = fit_curve_counts(rounds, n, n_ai, n_starts=1, start=estimate)['x']
        if progress is not None:
            progress.update()
    return draws


def _bar(progress, total, desc, unit):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def _lr(fit) -> float:
    return max(0.0, 2 * (fit['log_lik'] - fit['log_lik_flat']))


def _permutation_lr(rounds, n_mat, ai_mat, n_perm, rng, progress=None) -> np.ndarray:
    """LR statistics (curve vs flat) after shuffling each selector's choices across its rounds."""
    S, R = n_mat.shape
    stats_ = np.empty(n_perm)
    rows = np.arange(S)[:, None]
    for b in range(n_perm):
        order = np.argsort(rng.random((S, R)), axis=1)
        n, n_ai = n_mat[rows, order].sum(axis=0), ai_mat[rows, order].sum(axis=0)
        stats_[b] = _lr(fit_curve_counts(rounds, n, n_ai, n_starts=2))
        if progress is not None:
            progress.update()
    return stats_


def _flat_cluster_se(n_mat, ai_mat) -> float:
    """Selector-clustered SE of the overall share Σa/Σn (ratio-estimator linearisation, G/(G−1))."""
    n_i, a_i = n_mat.sum(axis=1), ai_mat.sum(axis=1)
    keep = n_i > 0
    G, N = int(keep.sum()), n_i.sum()
    if G < 2:
        return np.nan
    u = (a_i[keep] - a_i.sum() / N * n_i[keep]) / N
    return float(np.sqrt(G / (G - 1) * np.sum(u ** 2)))


def fit_learning_curves(data: pd.DataFrame, treatment: str = 'treatment', round: str = 'round',
                        dv: str = 'chose_ai', selector: str = 'selector_id', n_starts: int = 5,
                        n_boot: int = 0, ci: float = 0.95, seed: int = 0, progress: bool = False,
                        n_perm: int = 199, alpha: float = 0.05, min_selectors: int = 2):
    """Fit the learning curve and the flat model per treatment, and select one (module docstring).

    Parameters
    ----------
    data : long DataFrame, one row per choice (rows with an empty ``dv`` are ignored).
    n_boot : selector-clustered bootstrap replicates for the CIs (0: Wald CIs from the Hessian SEs).
    n_perm : selector permutations for the LR test of learning (0: no test; selection by BIC alone).
    alpha : level of that test in the selection rule.
    min_selectors : fewest selectors in a treatment for SEs, CIs and the test (below: NaN, BIC alone).

    Returns
    -------
    (params, fits)
    params : DataFrame with ``treatment``, ``parameter`` (p0, p_inf, k), ``estimate``, ``se``
        (selector-clustered sandwich; NaN on a bound), ``se_model`` (inverse Hessian: choices treated as
        independent), ``ci_low``, ``ci_high`` (cluster-bootstrap percentiles with n_boot, else Wald from
        ``se``), ``ci_method`` ('wald' or 'cluster_bootstrap'), ``identified`` (False for p_inf and k where
        the flat model is selected: there they are not identified and should not be read or contrasted).
    fits : DataFrame with ``treatment``, ``n_selectors``, ``n_choices``, ``selected_model`` ('flat' or
        'exponential'), ``selection_basis`` ('bic+permutation_lr' or 'bic'), ``p_flat`` (overall AI-choice
        share, the flat model's estimate), ``p_flat_se`` (selector-clustered), ``log_lik`` (exponential),
        ``log_lik_flat``, ``bic_flat``, ``bic_exponential``, ``delta_bic`` (exponential − flat; < 0 favours
        learning), ``aic_flat``, ``aic_exponential``, ``lr_stat``, ``lr_df`` (2), ``lr_p_value`` (selector-
        permutation p, NaN without permutations), ``lr_p_chi2`` (nominal chi-square(2) p: for reference only,
        not valid under the flat null and blind to clustering), ``n_perm``, ``converged``.
        With n_boot, the bootstrap draws are in ``params.attrs['boot']``.
    """
    rng = np.random.default_rng(seed)
    z = stats.norm.ppf(0.5 + ci / 2)
    param_rows, fit_rows, boots = [], [], {}
    for name, part in data.groupby(treatment, sort=True):
        rounds, n_mat, ai_mat = _selector_matrix(part, selector, round, dv)
        n, n_ai = n_mat.sum(axis=0), ai_mat.sum(axis=0)
        n_selectors = int((n_mat.sum(axis=1) > 0).sum())
        enough = n_selectors >= max(2, min_selectors)
        fit = fit_curve_counts(rounds, n, n_ai, n_starts=n_starts, seed=seed)
        se_model = _hessian_se(fit['x'], rounds, n, n_ai)
        se = _cluster_se(fit['x'], rounds, n_mat, ai_mat)
        lr = _lr(fit)
        n_total = float(n.sum())
        bic_flat = -2 * fit['log_lik_flat'] + np.log(n_total)
        bic_exp = -2 * fit['log_lik'] + 3 * np.log(n_total)
        lr_p, perms = np.nan, 0
        if enough and n_perm:
            bar = _bar(progress, n_perm, f'flat vs learning test: {name}', 'permutation')
            draws = _permutation_lr(rounds, n_mat, ai_mat, n_perm, rng, bar)
            if bar is not None:
                bar.close()
            lr_p, perms = float((1 + np.sum(draws >= lr - 1e-9)) / (1 + n_perm)), n_perm
        learning = bic_exp < bic_flat and (not np.isfinite(lr_p) or lr_p < alpha)
        selected = 'exponential' if learning else 'flat'
        if not enough:
            se = se_model = np.full(3, np.nan)
        if n_boot and enough:
            bar = _bar(progress, n_boot, f'curve bootstrap: {name}', 'replicate')
            draws = _bootstrap(rounds, n_mat, ai_mat, fit['x'], n_boot, rng, bar)
            if bar is not None:
                bar.close()
            boots[name] = draws
            low, high = np.quantile(draws, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
            method = 'cluster_bootstrap'
        else:
            lower, upper = np.array(BOUNDS).T
            low, high = np.maximum(fit['x'] - z * se, lower), np.minimum(fit['x'] + z * se, upper)
            method = 'wald'
        for i, parameter in enumerate(PARAMETERS):
            param_rows.append(dict(treatment=name, parameter=parameter, estimate=fit['x'][i], se=se[i],
                                   se_model=se_model[i], ci_low=low[i], ci_high=high[i], ci_method=method,
                                   identified=learning or parameter == 'p0'))
        fit_rows.append(dict(treatment=name, n_selectors=n_selectors, n_choices=int(n_total),
                             selected_model=selected,
                             selection_basis='bic+permutation_lr' if perms else 'bic',
                             p_flat=float(n_ai.sum() / n_total),
                             p_flat_se=_flat_cluster_se(n_mat, ai_mat) if enough else np.nan,
                             log_lik=fit['log_lik'], log_lik_flat=fit['log_lik_flat'], bic_flat=bic_flat,
                             bic_exponential=bic_exp, delta_bic=bic_exp - bic_flat,
                             aic_flat=-2 * fit['log_lik_flat'] + 2, aic_exponential=-2 * fit['log_lik'] + 6,
                             lr_stat=lr, lr_df=2, lr_p_value=lr_p,
                             lr_p_chi2=float(stats.chi2.sf(lr, 2)) if enough else np.nan, n_perm=perms,
                             converged=fit['success']))
    params = pd.DataFrame(param_rows)
    params.attrs['boot'] = boots
    return params, pd.DataFrame(fit_rows)


def compare_learning_curves(data: pd.DataFrame, reference: str | None = None, treatment: str = 'treatment',
                            round: str = 'round', dv: str = 'chose_ai', selector: str = 'selector_id',
                            n_boot: int = 200, ci: float = 0.95, seed: int = 0, progress: bool = False,
                            params: pd.DataFrame | None = None):
    """Treatment differences in p0, p_inf and k (other treatment − reference).

    Meaningful only where both treatments select the exponential curve (:func:`fit_learning_curves`):
    on a flat series p_inf and k are not identified. The report uses :func:`compare_treatments` instead.

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


def selected_curve(fits: pd.DataFrame, params: pd.DataFrame, treatment_name, t) -> np.ndarray:
    """p(t) of the model selected for ``treatment_name`` (the constant p_flat, or the exponential curve)."""
    t = np.asarray(t, dtype=float)
    fit = fits.set_index('treatment').loc[treatment_name]
    if fit['selected_model'] == 'flat':
        return np.full_like(t, fit['p_flat'])
    estimate = params[params['treatment'] == treatment_name].set_index('parameter')['estimate']
    return curve_probability(t, estimate['p0'], estimate['p_inf'], estimate['k'])


CONTRAST_COLUMNS = ['contrast', 'quantity', 'rounds', 'estimate_other', 'estimate_reference', 'difference', 'se',
                    'z', 'p_value', 'ci_low', 'ci_high', 'se_method', 'note']


def compare_treatments(data: pd.DataFrame, fits: pd.DataFrame, params: pd.DataFrame, reference: str | None = None,
                       k_rounds: int = 3, treatment: str = 'treatment', round: str = 'round', dv: str = 'chose_ai',
                       selector: str = 'selector_id', ci: float = 0.95, min_selectors: int = 10) -> pd.DataFrame:
    """Treatment contrasts (other − reference) on identified quantities.

    Quantities: ``early_share`` (AI-choice share in the first ``k_rounds`` rounds), ``late_share`` (last
    ``k_rounds``), ``late_minus_early`` (see :func:`analysis.curves.compare_early_late`: selector-clustered
    linearised SEs), and ``p_inf`` (plateau) only where both treatments select the exponential curve in
    ``fits`` (SE: the two selector-clustered sandwich SEs combined, treatments being independent groups of
    selectors); otherwise the p_inf row has no numbers and ``note`` says why. Too few selectors (below
    ``min_selectors`` in either treatment) or one treatment only: no SE, CI or p (never p = 0).

    Returns
    -------
    DataFrame with :data:`CONTRAST_COLUMNS`: ``contrast`` ('disclosed - hidden'), ``quantity``, ``rounds``
    (e.g. '1-3'), ``estimate_other``, ``estimate_reference``, ``difference``, ``se``, ``z``, ``p_value``
    (two-sided normal), ``ci_low``, ``ci_high`` (Wald), ``se_method``, ``note``.
    """
    from .curves import compare_early_late

    windows = compare_early_late(data, reference=reference, k_rounds=k_rounds, treatment=treatment, round=round,
                                 dv=dv, selector=selector, ci=ci, min_selectors=min_selectors)
    if windows.empty:
        return pd.DataFrame(columns=CONTRAST_COLUMNS)
    zq = stats.norm.ppf(0.5 + ci / 2)
    by_fit = fits.set_index('treatment')
    table = params.set_index(['treatment', 'parameter'])
    rows = []
    for contrast in dict.fromkeys(windows['contrast']):
        other, ref = contrast.split(' - ')
        row = dict(contrast=contrast, quantity='p_inf', rounds='plateau', estimate_other=np.nan,
                   estimate_reference=np.nan, difference=np.nan, se=np.nan, z=np.nan, p_value=np.nan,
                   ci_low=np.nan, ci_high=np.nan, se_method='cluster_sandwich', note='')
        flat = [t for t in (other, ref) if by_fit.loc[t, 'selected_model'] != 'exponential']
        if flat:
            row['note'] = f'not identified: {" and ".join(flat)} {"selects" if len(flat) == 1 else "select"} the flat model'
        else:
            a, b = table.loc[(other, 'p_inf')], table.loc[(ref, 'p_inf')]
            row.update(estimate_other=a['estimate'], estimate_reference=b['estimate'],
                       difference=a['estimate'] - b['estimate'])
            se = float(np.hypot(a['se'], b['se']))
            small = [t for t in (other, ref) if by_fit.loc[t, 'n_selectors'] < min_selectors]
            if small:
                row['note'] = f'withheld: fewer than {min_selectors} selectors in {" and ".join(small)}'
            elif np.isfinite(se) and se > 0:
                zval = row['difference'] / se
                row.update(se=se, z=zval, p_value=float(2 * stats.norm.sf(abs(zval))),
                           ci_low=row['difference'] - zq * se, ci_high=row['difference'] + zq * se)
            else:
                row['note'] = 'no SE: p_inf on a bound of its range'
        rows.append(row)
    out = pd.concat([windows, pd.DataFrame(rows)], ignore_index=True)
    return out[CONTRAST_COLUMNS]
