"""Learning models: exact gradients, parameter recovery (pooled and per selector), model comparison."""
import numpy as np
import pytest
from scipy import optimize

from analysis.io import fit_sample, validate_decisions
from analysis.learning_models import (EWA, MODELS, RandomChoice, RescorlaWagner, StaticPreference, compare_models,
                                      fit_per_selector, fit_pooled, negative_log_likelihood, prepare_trials)
from analysis.simulate import simulate_session

RW_TRUTH = dict(alpha=0.3, beta=10.0, bias=-1.0)


def _trials(model, params, **kwargs):
    decisions, _ = simulate_session(model, params, elicit_beliefs=False, **kwargs)
    return prepare_trials(validate_decisions(decisions.astype(str).replace({'nan': ''})))


@pytest.fixture(scope='module')
def rw_decisions():
    decisions, _ = simulate_session('rescorla_wagner', RW_TRUTH, treatments=['hidden', 'disclosed'], n_groups=50,
                                    n_rounds=15, timeout_rate=0.03, elicit_beliefs=False, seed=21)
    return validate_decisions(decisions.astype(str).replace({'nan': ''}))


@pytest.fixture(scope='module')
def rw_trials(rw_decisions):
    return prepare_trials(rw_decisions)


def test_every_model_declares_bounds_init_and_meaning():
    for model_class in MODELS.values():
        model = model_class()
        for name, p in model.params.items():
            assert p.lower <= p.init <= p.upper, name
            assert p.meaning
        assert {'chosen_position', 'offered_kinds', 'offered_badges', 'amount_returned'} <= set(model.data_columns)


@pytest.mark.parametrize('model', [StaticPreference(), RescorlaWagner(), RescorlaWagner(q0='free'), EWA()],
                         ids=lambda m: f'{m.name}_q0_{m.q0_source}')
def test_gradient_is_exact(model, rw_trials):
    rng = np.random.default_rng(0)
    trials = rw_trials.subset(np.arange(40))
    theta = np.column_stack([rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo), 40) for lo, hi in model.bounds()])
    _, grad = negative_log_likelihood(model, theta, trials, gradient=True)
    numeric = np.zeros_like(grad)
    for p in range(theta.shape[1]):
        step = np.zeros_like(theta)
        step[:, p] = 1e-6
        numeric[:, p] = (negative_log_likelihood(model, theta + step, trials)
                         - negative_log_likelihood(model, theta - step, trials)) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def test_random_choice_likelihood_is_log_of_number_of_cards(rw_trials):
    nll = negative_log_likelihood(RandomChoice(), np.zeros(0), rw_trials)
    assert nll.sum() == pytest.approx(rw_trials.n_obs.sum() * np.log(4))


def test_timeouts_are_kept_as_trials_but_add_nothing_to_the_likelihood(rw_decisions, rw_trials):
    n_timeouts = int(rw_decisions['choice_timed_out'].sum())
    assert n_timeouts > 0
    assert rw_trials.n_obs.sum() == len(rw_decisions) - n_timeouts
    assert (rw_trials.chosen == -1).sum() == n_timeouts
    without = prepare_trials(fit_sample(rw_decisions))  # the timed-out rows dropped altogether
    theta = np.array([0.4, 7.0, -0.5])
    for model in (RescorlaWagner(), EWA()):
        t = theta if model.name == 'rescorla_wagner' else np.array([0.8, 0.3, 0.5, 7.0, -0.5])
        assert negative_log_likelihood(model, t, rw_trials).sum() == pytest.approx(
            negative_log_likelihood(model, t, without).sum())


def test_rescorla_wagner_pooled_recovers_parameters(rw_trials):
    fit = fit_pooled(RescorlaWagner(), rw_trials, n_starts=3)
    # tolerances from repeated simulations at 150 selectors × 15 rounds (spread about ±0.05, ±1.5, ±0.15)
    assert fit['alpha'] == pytest.approx(RW_TRUTH['alpha'], abs=0.1)
    assert fit['beta'] == pytest.approx(RW_TRUTH['beta'], abs=3.0)
    assert fit['bias'] == pytest.approx(RW_TRUTH['bias'], abs=0.35)
    assert fit['converged']


def test_a_warm_start_is_tried_first_and_kept_where_it_is_best(rw_trials):
    many = fit_pooled(RescorlaWagner(), rw_trials, n_starts=4)
    # from the optimum itself one more start (the declared init) is enough to end at the same likelihood
    warm = fit_pooled(RescorlaWagner(), rw_trials, n_starts=1,
                      warm_start={name: many[name] for name in ('alpha', 'beta', 'bias')})
    assert warm['log_lik'] == pytest.approx(many['log_lik'], abs=1e-3)
    # a warm start outside the bounds is clipped into them, a missing parameter starts at its init
    clipped = fit_pooled(RescorlaWagner(), rw_trials, n_starts=1, warm_start={'alpha': 5.0, 'beta': np.nan})
    assert clipped['log_lik'] == pytest.approx(many['log_lik'], abs=1e-2)


def test_rescorla_wagner_wins_the_comparison_on_its_own_data(rw_trials):
    table, fits = compare_models(rw_trials, models=[RandomChoice(), StaticPreference(), RescorlaWagner()],
                                 n_starts=2)
    assert table.iloc[0]['model'] == 'rescorla_wagner'
    assert table.set_index('model').loc['random', 'delta_aic'] > 10
    assert table['aic_weight'].sum() == pytest.approx(1.0)
    assert set(table.columns) >= {'model', 'fit', 'n_params', 'n_obs', 'log_lik', 'aic', 'bic', 'delta_aic'}


def test_per_selector_fit_matches_a_separate_scipy_fit(rw_trials):
    trials = rw_trials.subset(np.arange(12))
    model = RescorlaWagner()
    table = fit_per_selector(model, trials, n_starts=3, seed=1)
    for i in range(12):
        one = trials.subset([i])
        best = min((optimize.minimize(lambda th: float(negative_log_likelihood(model, th, one)[0]), start,
                                      method='L-BFGS-B', bounds=model.bounds())
                    for start in ([0.3, 5, 0], [0.7, 2, 1], [0.1, 12, -1])), key=lambda r: r.fun)
        # the vectorized fit finds a likelihood at least as good as scipy's on that selector alone
        assert -table.loc[i, 'log_lik'] <= best.fun + 1e-3


def test_per_selector_fit_recovers_selector_differences():
    rng = np.random.default_rng(3)
    n_groups = 40
    bias = rng.choice([-2.0, 2.0], n_groups * 3)
    trials = _trials('rescorla_wagner', dict(alpha=0.3, beta=6.0, bias=bias), treatments=['disclosed'],
                     n_groups=n_groups, n_rounds=20, seed=5)
    table = fit_per_selector(RescorlaWagner(), trials, n_starts=2)
    # selectors averse to the AI label are recovered as averse (20 choices each: a noisy but clear split)
    assert np.corrcoef(bias, table['bias'])[0, 1] > 0.6
    assert table['n_params'].eq(3).all()


def test_hidden_selectors_do_not_count_the_identity_bias(rw_trials):
    trials = rw_trials.subset(np.arange(0, 150, 5))
    table = fit_per_selector(RescorlaWagner(), trials, n_starts=1)
    assert (table.loc[table['treatment'] == 'hidden', 'n_params'] == 2).all()
    assert (table.loc[table['treatment'] == 'disclosed', 'n_params'] == 3).all()
    # ... and report no estimate for it (it would be the optimizer's start value)
    assert table.loc[table['treatment'] == 'hidden', 'bias'].isna().all()
    assert table.loc[table['treatment'] == 'disclosed', 'bias'].notna().all()


def test_static_model_per_selector_does_not_count_a_bias_that_follows_the_kind(rw_trials):
    # within one selector's treatment the 'AI' badge is on exactly the AI cards (disclosed): a fixed kind
    # preference and a badge bias are one number
    table = fit_per_selector(StaticPreference(), rw_trials, n_starts=1)
    assert table['n_params'].eq(1).all()
    assert table['bias'].isna().all()


def test_ewa_pooled_fit_beats_chance_on_learning_data(rw_trials):
    ewa = fit_pooled(EWA(), rw_trials, n_starts=2)
    chance = fit_pooled(RandomChoice(), rw_trials)
    assert ewa['log_lik'] > chance['log_lik'] + 50
    assert ewa['beta'] > 1


def test_free_initial_value_is_a_fourth_parameter_and_is_recovered():
    # selectors who start optimistic (q0 = 0.6): a fit with q0 free finds it; one with q0 fixed at 1/3 does not
    trials = _trials('rescorla_wagner', dict(alpha=0.3, beta=8.0, bias=-1.0, q0=0.6), treatments=['disclosed'],
                     n_groups=60, n_rounds=15, seed=8)
    free = fit_pooled(RescorlaWagner(q0='free'), trials, n_starts=3, se=True)
    assert RescorlaWagner(q0='free').param_names == ['alpha', 'beta', 'bias', 'q0']
    assert free['q0_source'] == 'free' and free['initial_value'] == free['q0']
    # 180 selectors × 15 rounds: the clustered SE of q0 is about 0.04
    assert free['q0'] == pytest.approx(0.6, abs=3 * free['se_q0'])
    fixed = fit_pooled(RescorlaWagner(), trials, n_starts=3)
    assert abs(free['bias'] - (-1.0)) < abs(fixed['bias'] - (-1.0))
    assert free['log_lik'] > fixed['log_lik'] + 2


def test_initial_value_from_data_is_the_mean_first_return_share_per_treatment(rw_decisions, rw_trials):
    from analysis.learning_models import initial_values_from_data
    values = initial_values_from_data(rw_trials)
    first = (rw_decisions[rw_decisions['return_share'].notna()].sort_values('round')
             .groupby('selector_id').first())
    for treatment, part in first.groupby('treatment'):
        rows = [i for i, t in enumerate(rw_trials.treatment) if t == treatment]
        assert np.allclose(values[rows], part['return_share'].mean())
    fit = fit_pooled(RescorlaWagner(q0='data'), rw_trials.subset(rows), n_starts=1)
    assert fit['q0_source'] == 'data' and fit['initial_value'] == pytest.approx(part['return_share'].mean())


def test_free_initial_value_only_where_implemented():
    with pytest.raises(ValueError, match='Rescorla'):
        EWA(q0='free')
    with pytest.raises(ValueError, match="'data' or 'free'"):
        RescorlaWagner(q0='prior')


def test_hidden_treatment_gets_no_bias_estimate_whatever_the_initial_value(rw_trials):
    from analysis.learning_models import fit_by_treatment
    for q0 in (1 / 3, 'data', 'free'):
        estimates, fits = fit_by_treatment(RescorlaWagner(q0=q0), rw_trials, n_starts=1)
        hidden = estimates[estimates['treatment'] == 'hidden']
        assert 'bias' not in set(hidden['parameter']), q0
        assert 'bias' in set(estimates.loc[estimates['treatment'] == 'disclosed', 'parameter']), q0
        assert set(fits['q0_source']) == {'fixed' if q0 == 1 / 3 else q0}
