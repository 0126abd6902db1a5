"""Learning curve p(t): MLE agrees with statsmodels where both apply, recovers simulated parameters."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.io import validate_decisions
from analysis.learning_curve import (compare_learning_curves, compare_treatments, curve_probability,
                                     fit_curve_counts, fit_learning_curves, round_counts, selected_curve)
from analysis.simulate import simulate_session

TRUTH = {'hidden': dict(p0=0.5, p_inf=0.5, k=0.3), 'disclosed': dict(p0=0.25, p_inf=0.75, k=0.35)}


def _export(truth, treatments, n_groups, n_rounds=15, seed=11):
    """Simulated curve choosers, through the export's validation as a file would be."""
    decisions, _ = simulate_session('curve', truth, treatments=treatments, n_groups=n_groups, n_rounds=n_rounds,
                                    elicit_beliefs=False, seed=seed)
    decisions.attrs = {}  # the simulator's per-selector parameters are not part of the export
    return validate_decisions(decisions.astype(str).replace({'nan': ''}))


@pytest.fixture(scope='module')
def simulated():
    return _export(TRUTH, ['hidden', 'disclosed'], n_groups=100)


@pytest.fixture(scope='module')
def fitted(simulated):
    return fit_learning_curves(simulated, n_perm=99)


def test_curve_starts_at_p0_and_approaches_p_inf():
    assert curve_probability(1, 0.2, 0.8, 0.5) == pytest.approx(0.2)
    assert curve_probability(200, 0.2, 0.8, 0.5) == pytest.approx(0.8)
    assert curve_probability(2, 0.2, 0.8, np.log(2)) == pytest.approx(0.5)


def test_flat_log_likelihood_equals_intercept_only_logit(simulated):
    part = simulated[simulated['treatment'] == 'hidden'].dropna(subset=['chose_ai'])
    counts = round_counts(part)
    fit = fit_curve_counts(counts['round'], counts['n'], counts['n_ai'])
    logit = sm.Logit(part['chose_ai'].to_numpy(), np.ones((len(part), 1))).fit(disp=0)
    assert fit['log_lik_flat'] == pytest.approx(logit.llf, rel=1e-10)
    # the curve nests the flat model, so it can only fit as well or better
    assert fit['log_lik'] >= logit.llf - 1e-6


@pytest.mark.filterwarnings('ignore:df_:UserWarning')
def test_curve_mle_matches_statsmodels_generic_mle():
    # An independent optimizer (statsmodels GenericLikelihoodModel, Nelder-Mead) on the row-level data.
    from statsmodels.base.model import GenericLikelihoodModel
    rng = np.random.default_rng(5)
    rounds = np.repeat(np.arange(1, 11), 300)
    y = (rng.random(rounds.size) < curve_probability(rounds, 0.3, 0.7, 0.4)).astype(float)

    class Curve(GenericLikelihoodModel):
        def loglike(self, params):
            p = np.clip(curve_probability(self.exog[:, 0], *params), 1e-12, 1 - 1e-12)
            return np.sum(self.endog * np.log(p) + (1 - self.endog) * np.log(1 - p))

    reference = Curve(y, rounds[:, None].astype(float)).fit(start_params=[0.5, 0.5, 0.1], method='nm',
                                                          maxiter=5000, disp=0)
    counts = round_counts(pd.DataFrame({'round': rounds, 'chose_ai': y}))
    ours = fit_curve_counts(counts['round'], counts['n'], counts['n_ai'])
    np.testing.assert_allclose(ours['x'], reference.params, atol=2e-3)
    assert ours['log_lik'] == pytest.approx(reference.llf, abs=1e-3)


def test_recovers_simulated_curve_parameters(simulated):
    params, fits = fit_learning_curves(simulated)
    disclosed = params[params['treatment'] == 'disclosed'].set_index('parameter')
    # tolerances: about 2 SEs at the 150 disclosed selectors × 15 rounds
    assert disclosed.loc['p0', 'estimate'] == pytest.approx(0.25, abs=0.07)
    assert disclosed.loc['p_inf', 'estimate'] == pytest.approx(0.75, abs=0.06)
    assert disclosed.loc['k', 'estimate'] == pytest.approx(0.35, abs=0.2)
    for parameter in ('p0', 'p_inf'):
        assert disclosed.loc[parameter, 'ci_low'] < TRUTH['disclosed'][parameter] < disclosed.loc[parameter, 'ci_high']
    fits = fits.set_index('treatment')
    assert fits.loc['disclosed', 'lr_p_value'] == pytest.approx(1 / 200)  # real learning: the smallest possible p
    assert fits.loc['hidden', 'lr_p_value'] > 0.01  # flat by construction


def test_flat_series_selects_flat(fitted):
    params, fits = fitted
    hidden = fits.set_index('treatment').loc['hidden']
    assert hidden['selected_model'] == 'flat'
    assert hidden['delta_bic'] > 0 and hidden['lr_p_value'] > 0.05
    assert hidden['selection_basis'] == 'bic+permutation_lr'
    assert hidden['p_flat'] == pytest.approx(0.5, abs=0.03)
    # ~2 SEs: 150 selectors × 15 independent choices, so se ≈ sqrt(.25 / 2250) ≈ 0.0105
    assert hidden['p_flat_se'] == pytest.approx(np.sqrt(0.25 / 2250), rel=0.25)
    identified = params[params['treatment'] == 'hidden'].set_index('parameter')['identified']
    assert identified.to_dict() == {'p0': True, 'p_inf': False, 'k': False}
    # the drawn curve is the constant share, not the exponential fit of noise
    np.testing.assert_allclose(selected_curve(fits, params, 'hidden', [1, 8, 15]), hidden['p_flat'])


def test_learning_series_selects_exponential(fitted):
    params, fits = fitted
    disclosed = fits.set_index('treatment').loc['disclosed']
    assert disclosed['selected_model'] == 'exponential'
    assert disclosed['delta_bic'] < -50 and disclosed['lr_p_value'] < 0.05
    assert params[params['treatment'] == 'disclosed']['identified'].all()
    curve = selected_curve(fits, params, 'disclosed', [1, 15])
    assert curve[0] == pytest.approx(0.25, abs=0.07) and curve[1] == pytest.approx(0.75, abs=0.06)


def test_permutation_test_rejects_at_its_level_on_flat_series():
    # 40 flat files: the selector-permutation LR test rejects about alpha of them (binomial 0.05 × 40 = 2)
    rejected = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        choices = (rng.random((60, 10)) < 0.4).astype(float)
        data = pd.DataFrame({'treatment': 'hidden', 'selector_id': np.repeat(np.arange(60), 10),
                             'round': np.tile(np.arange(1, 11), 60), 'chose_ai': choices.ravel()})
        _, fits = fit_learning_curves(data, n_perm=39, n_starts=2, seed=seed)
        rejected += fits['lr_p_value'].iloc[0] < 0.05
        assert fits['selected_model'].iloc[0] == 'flat' or fits['lr_p_value'].iloc[0] < 0.05
    assert rejected <= 6  # P(Binomial(40, 0.05) > 6) < 0.01


def test_contrasts_recover_known_early_late_differences(simulated, fitted):
    params, fits = fitted
    table = compare_treatments(simulated, fits, params, reference='hidden', k_rounds=3).set_index('quantity')
    early_true = np.mean(curve_probability([1, 2, 3], **TRUTH['disclosed'])) - 0.5
    late_true = np.mean(curve_probability([13, 14, 15], **TRUTH['disclosed'])) - 0.5
    truth = {'early_share': early_true, 'late_share': late_true, 'late_minus_early': late_true - early_true}
    for quantity, true in truth.items():
        row = table.loc[quantity]
        # tolerance: 3 clustered SEs (each ≈ 0.03-0.05 at 150 selectors per treatment)
        assert abs(row['difference'] - true) < 3 * row['se'], quantity
        assert row['ci_low'] < row['difference'] < row['ci_high'] and 0 < row['p_value'] < 0.01
    # the plateau is not contrasted with a flat treatment
    plateau = table.loc['p_inf']
    assert np.isnan(plateau['difference']) and np.isnan(plateau['p_value'])
    assert 'hidden selects the flat model' in plateau['note']


def test_plateau_is_contrasted_where_both_treatments_learn():
    truth = {'disclosed': dict(p0=0.25, p_inf=0.75, k=0.35), 'false_label': dict(p0=0.3, p_inf=0.55, k=0.35)}
    data = _export(truth, ['disclosed', 'false_label'], n_groups=100, seed=4)
    params, fits = fit_learning_curves(data, n_perm=49)
    assert set(fits['selected_model']) == {'exponential'}
    row = compare_treatments(data, fits, params, reference='false_label').set_index('quantity').loc['p_inf']
    assert row['contrast'] == 'disclosed - false_label'
    assert abs(row['difference'] - 0.2) < 3 * row['se'] and row['ci_low'] < 0.2 < row['ci_high']
    assert row['p_value'] < 0.01 and row['se_method'] == 'cluster_sandwich'


def test_one_treatment_or_tiny_file_withholds_instead_of_p_zero():
    one = _export(TRUTH, ['disclosed'], n_groups=20)
    params, fits = fit_learning_curves(one, n_perm=19)
    assert compare_treatments(one, fits, params).empty
    tiny = _export(TRUTH, ['hidden', 'disclosed'], n_groups=2, seed=3)  # 3 selectors per treatment
    params, fits = fit_learning_curves(tiny, n_perm=19, min_selectors=10)
    assert fits['lr_p_value'].isna().all() and (fits['selection_basis'] == 'bic').all()
    assert fits['p_flat_se'].isna().all() and params['se'].isna().all() and params['ci_low'].isna().all()
    table = compare_treatments(tiny, fits, params, min_selectors=10)
    assert len(table) == 4
    assert table['p_value'].isna().all() and table['se'].isna().all() and table['ci_low'].isna().all()
    assert table['note'].str.len().gt(0).all()


def test_treatment_difference_ci_covers_the_true_difference(simulated):
    differences = compare_learning_curves(simulated, reference='hidden', n_boot=100, seed=2,
                                          params=fit_learning_curves(simulated, n_boot=100, seed=2, n_perm=0)[0]
                                          ).set_index('parameter')
    for parameter, true in (('p0', -0.25), ('p_inf', 0.25)):
        row = differences.loc[parameter]
        assert row['contrast'] == 'disclosed - hidden'
        assert row['ci_low'] < true < row['ci_high']
    # p0 is well identified in both treatments: its difference is clearly negative. (In the flat
    # hidden treatment p_inf and k are not separately identified, so their CIs are wide.)
    assert differences.loc['p0', 'ci_high'] < 0


@pytest.mark.filterwarnings('ignore:df_:UserWarning')
@pytest.mark.filterwarnings('ignore:Maximum Likelihood optimization failed')
def test_curve_clustered_se_matches_statsmodels_cluster_robust_generic_mle(simulated):
    # statsmodels' GenericLikelihoodModel with cov_type='cluster' (numerical scores per choice, summed by
    # selector) is the independent computation of the same sandwich, at the same estimate.
    from statsmodels.base.model import GenericLikelihoodModel
    part = simulated[simulated['treatment'] == 'disclosed'].dropna(subset=['chose_ai'])
    params, _ = fit_learning_curves(part, n_perm=0)
    ours = params.set_index('parameter')

    class Curve(GenericLikelihoodModel):
        def loglikeobs(self, theta):
            p = np.clip(curve_probability(self.exog[:, 0], *theta), 1e-12, 1 - 1e-12)
            return self.endog * np.log(p) + (1 - self.endog) * np.log(1 - p)

    model = Curve(part['chose_ai'].to_numpy(float), part[['round']].to_numpy(float))
    start = ours.loc[['p0', 'p_inf', 'k'], 'estimate'].to_numpy()
    reference = model.fit(start_params=start, method='nm', maxiter=0, disp=0, cov_type='cluster',
                          cov_kwds={'groups': pd.factorize(part['selector_id'])[0]})
    np.testing.assert_allclose(reference.params, start)  # maxiter=0: statsmodels evaluated at our estimate
    np.testing.assert_allclose(ours.loc[['p0', 'p_inf', 'k'], 'se'], reference.bse, rtol=0.02)
    # the curve simulator draws every choice independently: there the clustered and the model-based SE agree
    np.testing.assert_allclose(ours['se'], ours['se_model'], rtol=0.3)
