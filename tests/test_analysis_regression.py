"""Mixed logit (lme4 glmer through Rscript) and GEE: tidy output, recovery of known fixed effects from
simulated random-intercept and random-slope data, SEs against the GEE's robust SEs and a direct R fit, CI
coverage, convergence flags, and a clear error when R or lme4 is missing."""
import subprocess

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analysis import regression
from analysis.io import validate_decisions
from analysis.regression import (GLMM_COLUMNS, TIDY_COLUMNS, GLMMConvergenceWarning, GLMMUnavailable, gee_logit,
                                 mixed_logit, regression_frame)
from analysis.simulate import simulate_session

TERMS = ['Intercept', 'C(treatment)[T.disclosed]', 'round0', 'round0:C(treatment)[T.disclosed]']
# Fixed effects on the logit scale, in TERMS order: disclosed starts lower and rises each round.
TRUTH = np.array([-0.3, -0.6, 0.02, 0.12])


def random_intercept_logit(n_groups, n_rounds, sd_selector, sd_group, seed, n_selectors=3, beta=TRUTH, sd_slope=0.0):
    """Decisions from logit P(chose_ai) = x'beta + u_selector + u_group + v_selector·(round − 1), treatments
    alternating by group (sd_slope > 0: each selector has its own round slope, independent of its intercept)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        treatment = ('hidden', 'disclosed')[g % 2]
        u_group = rng.normal(0, sd_group)
        for s in range(n_selectors):
            u_selector = rng.normal(0, sd_selector)
            v_selector = rng.normal(0, sd_slope) if sd_slope else 0.0
            for r in range(1, n_rounds + 1):
                d = float(treatment == 'disclosed')
                eta = beta @ [1, d, r - 1, (r - 1) * d] + u_selector + u_group + v_selector * (r - 1)
                rows.append(dict(selector_id=f'g{g}s{s}', group_key=f'g{g}', treatment=treatment, round=r,
                                 chose_ai=float(rng.random() < 1 / (1 + np.exp(-eta)))))
    return pd.DataFrame(rows)


@pytest.fixture(scope='module')
def decisions():
    truth = {'hidden': dict(p0=0.5, p_inf=0.5, k=0.3), 'disclosed': dict(p0=0.2, p_inf=0.8, k=0.3)}
    data, _ = simulate_session('curve', truth, treatments=['hidden', 'disclosed'], n_groups=30, n_rounds=10,
                               timeout_rate=0.02, elicit_beliefs=False, seed=8)
    return validate_decisions(data.astype(str).replace({'nan': ''}))


@pytest.fixture(scope='module')
def clustered():
    # 300 groups × 3 selectors × 12 rounds = 10,800 choices; selector SD 1.0, group SD 0.5
    return random_intercept_logit(n_groups=300, n_rounds=12, sd_selector=1.0, sd_group=0.5, seed=11)


@pytest.fixture(scope='module')
def clustered_fit(clustered):
    # the data have no selector slopes: the random-slope model would be singular (slope SD at 0)
    return mixed_logit(clustered, random_slope=False)


@pytest.fixture(scope='module')
def sloped():
    # 200 groups × 3 selectors × 12 rounds; selectors' own round slopes with SD 0.15 (a learner moving
    # 0.15 log-odds a round faster or slower than the mean), intercept SD 1.0, group SD 0.3
    return random_intercept_logit(n_groups=200, n_rounds=12, sd_selector=1.0, sd_group=0.3, sd_slope=0.15, seed=12)


def test_gee_and_mixed_logit_return_tidy_tables(decisions):
    gee = gee_logit(decisions)
    mixed = mixed_logit(decisions)
    assert list(gee.columns) == TIDY_COLUMNS
    assert list(mixed.columns) == TIDY_COLUMNS + GLMM_COLUMNS
    assert gee['term'].tolist() == TERMS
    assert mixed['term'].tolist() == TERMS + ['sd(selector)', 'sd(selector:round0)', 'cor(selector)', 'sd(group)']
    assert mixed.attrs['glmer']['random_slope']
    intercepts_only = mixed_logit(decisions, random_slope=False)
    assert intercepts_only['term'].tolist() == TERMS + ['sd(selector)', 'sd(group)']
    assert (mixed['model'] == 'mixed_logit_glmer').all()
    assert (gee['ci_low'] < gee['estimate']).all() and (gee['estimate'] < gee['ci_high']).all()
    fixed = mixed.iloc[:4]
    assert (fixed['ci_low'] < fixed['estimate']).all() and (fixed['estimate'] < fixed['ci_high']).all()
    assert mixed.attrs['glmer']['n_obs'] == decisions['chose_ai'].notna().sum()
    assert mixed.attrs['glmer']['random_effects'] == ['selector', 'group']


def test_learning_in_disclosed_shows_as_round_by_treatment_interaction(decisions):
    for table in (gee_logit(decisions), mixed_logit(decisions)):
        rows = table.set_index('term')
        assert rows.loc['C(treatment)[T.disclosed]', 'estimate'] < 0  # fewer AI choices in round 1
        assert rows.loc['round0:C(treatment)[T.disclosed]', 'estimate'] > 0  # then more each round
        assert rows.loc['round0:C(treatment)[T.disclosed]', 'p_value'] < 0.001
        assert abs(rows.loc['round0', 'estimate']) < 0.1  # hidden is flat


def test_glmer_recovers_known_fixed_effects_and_random_sds(clustered_fit):
    fit = clustered_fit.set_index('term')
    assert fit['converged'].all() and not fit['singular'].any()
    estimate, se = fit.loc[TERMS, 'estimate'].to_numpy(), fit.loc[TERMS, 'se'].to_numpy()
    # Tolerance: 3.5 SEs (about 0.3 for the round-1 terms, 0.03 for the slopes at this size)
    assert np.all(np.abs(estimate - TRUTH) < 3.5 * se), (estimate, se)
    assert np.all(np.abs(estimate - TRUTH) < [0.35, 0.45, 0.035, 0.05]), estimate
    assert abs(fit.loc['sd(selector)', 'estimate'] - 1.0) < 0.2
    assert abs(fit.loc['sd(group)', 'estimate'] - 0.5) < 0.3
    # Sane Wald SEs (the variational fit gave ~1e-12 for the slope)
    assert np.all((se > 1e-3) & (se < 1))


def test_random_slope_model_recovers_the_slope_sd_and_widens_only_the_round_terms_ses(sloped):
    with_slope = mixed_logit(sloped).set_index('term')
    without = mixed_logit(sloped, random_slope=False).set_index('term')
    assert with_slope['converged'].all() and not with_slope['singular'].any()
    assert abs(with_slope.loc['sd(selector:round0)', 'estimate'] - 0.15) < 0.04
    assert abs(with_slope.loc['sd(selector)', 'estimate'] - 1.0) < 0.25
    assert abs(with_slope.loc['cor(selector)', 'estimate']) < 0.5  # drawn independent
    estimate, se = with_slope.loc[TERMS, 'estimate'].to_numpy(), with_slope.loc[TERMS, 'se'].to_numpy()
    assert np.all(np.abs(estimate - TRUTH) < 3.5 * se), (estimate, se)
    # Ignoring the selectors' slopes understates the round terms' uncertainty (by about a fifth here:
    # measured 1.28×), much less so the round-1 terms'
    slopes = ['round0', 'round0:C(treatment)[T.disclosed]']
    assert (with_slope.loc[slopes, 'se'] > 1.15 * without.loc[slopes, 'se']).all()
    round1 = ['Intercept', 'C(treatment)[T.disclosed]']
    np.testing.assert_allclose(with_slope.loc[round1, 'se'], without.loc[round1, 'se'], rtol=0.25)
    # and agree with the GEE's robust SEs
    gee = gee_logit(sloped).set_index('term').loc[TERMS]
    assert (with_slope.loc[TERMS, 'se'] / gee['se']).between(0.5, 2.0).all()


def test_glmm_standard_errors_agree_with_gee_robust_ses_within_factor_two(clustered, clustered_fit):
    glmm = clustered_fit.set_index('term').loc[TERMS]
    gee = gee_logit(clustered).set_index('term').loc[TERMS]
    ratio = glmm['se'] / gee['se']
    assert ratio.between(0.5, 2.0).all(), ratio
    # Subject-specific effects are larger in size than population-averaged ones, with the same sign.
    assert (np.sign(glmm['estimate']) == np.sign(gee['estimate'])).all()
    assert abs(glmm.loc['round0:C(treatment)[T.disclosed]', 'estimate']) > \
        abs(gee.loc['round0:C(treatment)[T.disclosed]', 'estimate'])


def test_fixed_effects_match_a_direct_glmer_formula_fit(tmp_path, sloped):
    # Independent of the design-matrix plumbing: glmer on the raw columns with R's own factor coding.
    frame = regression_frame(sloped)
    frame[['chose_ai', 'round0', 'treatment', 'selector_id', 'group_key']].to_csv(tmp_path / 'd.csv', index=False)
    script = ('library(lme4); d <- read.csv(commandArgs(TRUE)[1]); '
              'd$treatment <- factor(d$treatment, levels = c("hidden", "disclosed")); '
              'f <- glmer(chose_ai ~ round0 * treatment + (1 + round0 | selector_id) + (1 | group_key), data = d, '
              'family = binomial, control = glmerControl(optimizer = "nloptwrap", calc.derivs = FALSE, '
              'optCtrl = list(xtol_rel = 1e-10, ftol_rel = 1e-12, maxeval = 1e5))); '
              'cat(sprintf("%.10f", c(fixef(f), sqrt(diag(as.matrix(vcov(f)))))), sep = "\\n")')
    out = subprocess.run(['Rscript', '-e', script, str(tmp_path / 'd.csv')], capture_output=True, text=True,
                         check=True).stdout.split()
    direct = np.array(out, float).reshape(2, 4)[:, [0, 2, 1, 3]]  # R's order: intercept, round0, treatment, ...
    ours = mixed_logit(sloped).set_index('term').loc[TERMS]
    # same likelihood, differently parametrised design: equal up to the optimizer's tolerance
    np.testing.assert_allclose(ours['estimate'], direct[0], atol=1e-4)
    np.testing.assert_allclose(ours['se'], direct[1], rtol=1e-3)


def test_adaptive_quadrature_needs_a_single_random_effect_and_is_close_to_laplace():
    data = random_intercept_logit(n_groups=60, n_rounds=10, sd_selector=1.0, sd_group=0.0, seed=3, n_selectors=1)
    laplace = mixed_logit(data, group=None, random_slope=False)
    agq = mixed_logit(data, group=None, random_slope=False, n_agq=9)
    assert agq.attrs['glmer']['n_agq'] == 9 and agq['converged'].all()
    np.testing.assert_allclose(agq['estimate'][:4], laplace['estimate'][:4], atol=0.1)
    assert agq['estimate'].tolist() != laplace['estimate'].tolist()  # a different likelihood was maximised
    with pytest.raises(ValueError, match='single scalar random effect'):
        mixed_logit(random_intercept_logit(20, 5, 1.0, 0.5, seed=4), n_agq=5, random_slope=False)
    with pytest.raises(ValueError, match='single scalar random effect'):
        mixed_logit(data, group=None, n_agq=5)  # the random slope is a second random effect


def test_singular_fit_is_flagged_not_dropped():
    # Every selector makes the same choices: the between-selector SD is estimated at 0 (a boundary fit).
    pattern = [0, 1, 0, 1, 1, 0, 1, 1]
    rows = [dict(selector_id=f's{s}', group_key=f's{s}', treatment='hidden', round=r + 1, chose_ai=float(y))
            for s in range(30) for r, y in enumerate(pattern)]
    with pytest.warns(GLMMConvergenceWarning, match='singular'):
        table = mixed_logit(pd.DataFrame(rows))
    assert table['singular'].all()
    assert 'singular' in table['fit_message'].iloc[0]
    assert table['converged'].all()  # a boundary fit is flagged as singular, not as a failed optimization
    assert table.set_index('term').loc['sd(selector)', 'estimate'] < 1e-3


def test_missing_rscript_names_the_debian_packages(monkeypatch, decisions):
    monkeypatch.setattr(regression, 'RSCRIPT', '/nonexistent/bin/Rscript')
    with pytest.raises(GLMMUnavailable, match='r-base-core r-cran-lme4'):
        mixed_logit(decisions)


def test_missing_lme4_names_the_debian_packages(monkeypatch, tmp_path, decisions):
    # An Rscript whose library lacks lme4: the R script exits with status 3.
    fake = tmp_path / 'Rscript'
    fake.write_text('#!/bin/sh\nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setattr(regression, 'RSCRIPT', str(fake))
    with pytest.raises(GLMMUnavailable, match='lme4 package is not.*r-base-core r-cran-lme4'):
        mixed_logit(decisions)


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore::analysis.regression.GLMMConvergenceWarning')  # group SD at 0 in a few
def test_wald_ci_of_the_round_slope_covers_the_truth_about_95_percent():
    # Selectors with their own slopes: the default model's Wald CI of the mean slope covers
    n_datasets, hits = 40, 0
    for seed in range(n_datasets):
        data = random_intercept_logit(n_groups=40, n_rounds=10, sd_selector=1.0, sd_group=0.5, sd_slope=0.1,
                                      seed=1000 + seed)
        row = mixed_logit(data).set_index('term').loc['round0']
        hits += row['ci_low'] <= TRUTH[2] <= row['ci_high']
    assert 0.85 <= hits / n_datasets <= 1.0, hits


def test_gee_point_estimates_equal_logit_under_independence(decisions):
    # With one observation per cluster-round and no real within-selector correlation, GEE's estimates are
    # close to the plain logit's (the SEs differ).
    frame = regression_frame(decisions)
    logit = smf.logit('chose_ai ~ round0 * C(treatment)', frame).fit(disp=0)
    gee = gee_logit(decisions).set_index('term')
    np.testing.assert_allclose(gee['estimate'].to_numpy(), logit.params.reindex(gee.index).to_numpy(), atol=0.05)


def test_empty_choice_rows_are_dropped_and_reference_is_hidden(decisions):
    frame = regression_frame(decisions)
    assert len(frame) == decisions['chose_ai'].notna().sum()
    assert list(frame['treatment'].cat.categories) == ['hidden', 'disclosed']
    with pytest.raises(ValueError, match="reference treatment 'nope'"):
        regression_frame(decisions, reference='nope')


def test_a_single_group_gets_no_group_random_intercept():
    # One mini-society (e.g. a 1,000-selector population run): a group level would have one level only,
    # which glmer refuses; the selector intercepts remain.
    rng = np.random.default_rng(1)
    rows = [dict(selector_id=f's{s}', group_key='g1', treatment='disclosed', round=r + 1,
                 chose_ai=float(rng.random() < 0.5)) for s in range(40) for r in range(8)]
    table = mixed_logit(pd.DataFrame(rows))
    assert 'sd(group)' not in set(table['term'])
    assert {'Intercept', 'round0', 'sd(selector)'} <= set(table['term'])
    assert np.isfinite(table.set_index('term').loc['round0', 'se'])
