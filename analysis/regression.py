"""Logistic regressions of choosing an AI candidate: mixed effects (statsmodels) and a GEE cross-check.

Model: ``chose_ai ~ round0 * C(treatment)`` where ``round0 = round − 1`` (so the intercept and the
treatment terms describe round 1), with random intercepts for selectors (and mini-society groups).
The mixed model is statsmodels' ``BinomialBayesMixedGLM`` fitted by variational Bayes (``fit_vb``);
its ``se`` is the posterior SD and its p-value the normal approximation. The GEE (exchangeable correlation within selector, robust SEs) estimates
population-averaged effects, which are smaller in size than the subject-specific mixed-model ones
but should agree in sign and significance.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import sparse, stats
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

__all__ = ['mixed_logit', 'gee_logit', 'regression_frame', 'TIDY_COLUMNS']

TIDY_COLUMNS = ['model', 'term', 'estimate', 'se', 'z', 'p_value', 'ci_low', 'ci_high', 'odds_ratio']


def regression_frame(data: pd.DataFrame, dv: str = 'chose_ai', round: str = 'round', treatment: str = 'treatment',
                     reference: str | None = None) -> pd.DataFrame:
    """Rows with a choice, plus ``round0`` and ``treatment`` as an ordered categorical.

    reference : the baseline treatment (default 'hidden' if present, else the first alphabetically).
    """
    frame = data[data[dv].notna()].copy()
    if frame.empty:
        raise ValueError('no decisions with a choice: nothing to regress')
    levels = sorted(frame[treatment].unique())
    reference = reference if reference is not None else ('hidden' if 'hidden' in levels else levels[0])
    if reference not in levels:
        raise ValueError(f'reference treatment {reference!r} not in the data ({levels})')
    levels = [reference] + [t for t in levels if t != reference]
    frame['treatment'] = pd.Categorical(frame[treatment], categories=levels)
    frame['round0'] = frame[round].astype(float) - 1.0
    frame['chose_ai'] = frame[dv].astype(float)
    return frame


def _formula(frame: pd.DataFrame) -> str:
    # One treatment in the data: the treatment terms would be collinear with the intercept.
    if frame['treatment'].nunique() > 1:
        return 'chose_ai ~ round0 * C(treatment)'
    return 'chose_ai ~ round0'


def _tidy(model_name, terms, estimate, se, ci) -> pd.DataFrame:
    estimate, se = np.asarray(estimate, float), np.asarray(se, float)
    z = estimate / se
    q = stats.norm.ppf(0.5 + ci / 2)
    return pd.DataFrame({
        'model': model_name, 'term': list(terms), 'estimate': estimate, 'se': se, 'z': z,
        'p_value': 2 * stats.norm.sf(np.abs(z)), 'ci_low': estimate - q * se, 'ci_high': estimate + q * se,
        'odds_ratio': np.exp(estimate),
    })[TIDY_COLUMNS]


def mixed_logit(data: pd.DataFrame, selector: str = 'selector_id', group: str | None = 'group_key',
                reference: str | None = None, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mixed-effects logistic regression ``chose_ai ~ round0 * C(treatment)`` with random intercepts.

    Parameters
    ----------
    data : validated decisions (rows without a choice are dropped here).
    selector, group : columns whose levels get random intercepts (group=None: selectors only; a group
        column with one selector per group adds nothing and is skipped).
    seed : seeds the random starting SDs of the variational fit (statsmodels draws them).

    Notes
    -----
    Variational Bayes (``fit_vb``): its posterior SDs are known to be too small; trust the GEE's
    robust SEs for inference and read this for the subject-specific effect sizes. It is slow on big
    data (about 20–30 s for 975 selectors × 20 rounds on 2 cores; see the benchmark).

    Returns
    -------
    Tidy DataFrame (columns :data:`TIDY_COLUMNS`): fixed effects, then rows ``sd(selector)`` /
    ``sd(group)`` holding the random-intercept standard deviations (estimate only; se from the
    posterior of the log-SD, CIs transformed back).
    """
    frame = regression_frame(data, reference=reference)
    levels = {'selector': frame[selector].astype(str)}
    if group and group in frame and frame.groupby(group)[selector].nunique().max() > 1:
        levels['group'] = frame[group].astype(str)
    exog = patsy.dmatrix(_formula(frame).split('~')[1], frame, return_type='dataframe')
    # Random-intercept design built sparse: a dense one-hot (rows × selectors) would not fit in memory
    # for a 975-selector study.
    blocks, ident, vc_names = [], [], []
    for i, (name, codes) in enumerate(levels.items()):
        index, uniques = pd.factorize(codes)
        blocks.append(sparse.csr_array((np.ones(len(index)), (np.arange(len(index)), index)),
                                       shape=(len(index), len(uniques))))
        ident += [i] * len(uniques)
        vc_names.append(name)
    model = BinomialBayesMixedGLM(frame['chose_ai'].to_numpy(float), exog.to_numpy(), sparse.hstack(blocks).tocsr(),
                                  np.array(ident), vcp_p=1, fe_p=2, fep_names=list(exog.columns),
                                  vcp_names=vc_names)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        # L-BFGS-B: BFGS's dense inverse Hessian over ~2×(n_selectors + n_groups) parameters is slow.
        result = model.fit_vb(fit_method='L-BFGS-B', rng=seed)
    name = 'mixed_logit_vb'
    fixed = _tidy(name, model.fep_names, result.fe_mean, result.fe_sd, ci)
    q = stats.norm.ppf(0.5 + ci / 2)
    rows = []
    for i, vc_name in enumerate(model.vcp_names):
        log_sd, sd_of_log = result.vcp_mean[i], result.vcp_sd[i]
        rows.append(dict(model=name, term=f'sd({vc_name})', estimate=np.exp(log_sd), se=np.exp(log_sd) * sd_of_log,
                         z=np.nan, p_value=np.nan, ci_low=np.exp(log_sd - q * sd_of_log),
                         ci_high=np.exp(log_sd + q * sd_of_log), odds_ratio=np.nan))
    return pd.concat([fixed, pd.DataFrame(rows, columns=TIDY_COLUMNS)], ignore_index=True)


def gee_logit(data: pd.DataFrame, selector: str = 'selector_id', reference: str | None = None,
              ci: float = 0.95) -> pd.DataFrame:
    """GEE logistic regression, selectors as clusters, exchangeable working correlation, robust SEs.

    Returns a tidy DataFrame (columns :data:`TIDY_COLUMNS`), model name 'gee_logit'.
    """
    frame = regression_frame(data, reference=reference)
    model = smf.gee(_formula(frame), groups=frame[selector], data=frame, family=sm.families.Binomial(),
                    cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        result = model.fit()
        # tiny data can give a non-positive robust variance: its SE is NaN, without a warning
        se = result.bse.to_numpy()
    return _tidy('gee_logit', result.params.index, result.params.to_numpy(), se, ci)
