"""AI-choice share by round: counts, chance level, and selector-clustered bootstrap CIs."""
import numpy as np
import pandas as pd
import pytest

from analysis.curves import ai_choice_share


def _choices(pattern, treatment='disclosed', share_offered=0.5):
    """pattern: {selector: [chose_ai per round]} -> long DataFrame."""
    rows = [dict(selector_id=s, treatment=treatment, round=r + 1, chose_ai=c, ai_share_offered=share_offered)
            for s, choices in pattern.items() for r, c in enumerate(choices)]
    return pd.DataFrame(rows)


def test_share_and_chance_are_counted_per_round_and_treatment():
    data = pd.concat([
        _choices({'a': [1, 1, 0], 'b': [0, 1, np.nan], 'c': [0, 1, 1]}),
        _choices({'d': [1, 0, 0]}, treatment='hidden', share_offered=0.25),
    ])
    table = ai_choice_share(data, n_boot=0).set_index(['treatment', 'round'])
    assert table.loc[('disclosed', 1), 'share_ai'] == 1 / 3
    assert table.loc[('disclosed', 3), 'n_selectors'] == 2  # the empty choice is left out
    assert table.loc[('disclosed', 3), 'share_ai'] == 0.5
    assert table.loc[('hidden', 1), 'chance'] == 0.25
    assert table.loc[('hidden', 2), 'share_ai'] == 0.0


def test_bootstrap_is_seeded_and_brackets_the_share():
    rng = np.random.default_rng(0)
    data = _choices({f's{i}': list(rng.integers(0, 2, 5)) for i in range(40)})
    first = ai_choice_share(data, n_boot=300, seed=3)
    again = ai_choice_share(data, n_boot=300, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert (first['ci_low'] <= first['share_ai']).all() and (first['share_ai'] <= first['ci_high']).all()


def test_ci_resamples_selectors_not_choices():
    # Each selector always makes the same choice, so round shares move together across rounds:
    # resampling selectors gives the same interval in every round and the mean over rounds a CI
    # no narrower than one round's (independent choices would shrink it).
    always = {f'ai{i}': [1] * 10 for i in range(10)} | {f'hu{i}': [0] * 10 for i in range(10)}
    table = ai_choice_share(_choices(always), n_boot=2000, seed=1)
    assert table['ci_low'].nunique() == 1 and table['ci_high'].nunique() == 1
    width = table['ci_high'].iloc[0] - table['ci_low'].iloc[0]
    binomial_width_200_choices = 2 * 1.96 * np.sqrt(0.25 / 200)
    assert width > 2 * binomial_width_200_choices


def test_above_chance_flags_ci_beyond_chance():
    data = _choices({f's{i}': [1, 1, 0] if i < 18 else [0, 1, 0] for i in range(20)})
    table = ai_choice_share(data, n_boot=500, seed=0).set_index('round')
    assert table.loc[1, 'above_chance'] == True  # noqa: E712
    assert table.loc[3, 'above_chance'] == False  # noqa: E712


def _learning_panel(n_selectors=80, n_rounds=10, seed=0):
    """Selectors whose AI-choice probability rises from 0.3 to 0.7, each with a persistent offset."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 0.15, n_selectors)[:, None]
    p = np.clip(np.linspace(0.3, 0.7, n_rounds)[None, :] + offset, 0.02, 0.98)
    choices = (rng.random((n_selectors, n_rounds)) < p).astype(float)
    return pd.DataFrame({'treatment': 'disclosed', 'selector_id': np.repeat(np.arange(n_selectors), n_rounds),
                         'round': np.tile(np.arange(1, n_rounds + 1), n_selectors), 'chose_ai': choices.ravel(),
                         'ai_share_offered': 0.5})


def _cluster_ols(frame, formula):
    """statsmodels OLS with selector-clustered SEs: the independent computation of the same SEs."""
    import statsmodels.formula.api as smf
    return smf.ols(formula, frame).fit(cov_type='cluster', cov_kwds={'groups': frame['selector_id']})


def test_early_late_shares_match_cluster_robust_ols():
    from analysis.curves import early_late_shares
    data = _learning_panel()
    table = early_late_shares(data, k_rounds=3, min_selectors=10).set_index('quantity')
    assert table.loc['early_share', 'rounds'] == '1-3' and table.loc['late_share', 'rounds'] == '8-10'
    early, late = data[data['round'] <= 3], data[data['round'] >= 8]
    assert table.loc['early_share', 'estimate'] == early['chose_ai'].mean()
    # An intercept-only OLS with selector clusters has the same sandwich (small-sample factor G/(G-1)).
    reference = _cluster_ols(early, 'chose_ai ~ 1')
    assert table.loc['early_share', 'se'] == pytest.approx(reference.bse['Intercept'], rel=1e-6)
    both = pd.concat([early, late]).assign(late=lambda f: (f['round'] >= 8).astype(float))
    change = _cluster_ols(both, 'chose_ai ~ late')
    assert table.loc['late_minus_early', 'estimate'] == pytest.approx(change.params['late'])
    # here every selector has every round, so the within-selector sandwich is OLS's up to (N-1)/(N-2)
    assert table.loc['late_minus_early', 'se'] == pytest.approx(change.bse['late'], rel=0.01)
    assert table.loc['late_minus_early', 'p_value'] < 1e-6
    assert table.loc['early_share', 'chance'] == 0.5


def test_compare_early_late_adds_independent_treatment_variances():
    from analysis.curves import compare_early_late, early_late_shares
    data = pd.concat([_learning_panel(seed=1),
                      _learning_panel(seed=2).assign(treatment='hidden', selector_id=lambda f: f['selector_id'] + 1000)])
    shares = early_late_shares(data, min_selectors=10).set_index(['treatment', 'quantity'])
    table = compare_early_late(data, min_selectors=10).set_index('quantity')
    assert (table['contrast'] == 'disclosed - hidden').all()
    for quantity in ('early_share', 'late_share', 'late_minus_early'):
        a, b = shares.loc[('disclosed', quantity)], shares.loc[('hidden', quantity)]
        assert table.loc[quantity, 'difference'] == pytest.approx(a['estimate'] - b['estimate'])
        assert table.loc[quantity, 'se'] == pytest.approx(np.hypot(a['se'], b['se']))
    # same generating process in both: the late-minus-early difference is near 0 (3 SEs)
    assert abs(table.loc['late_minus_early', 'difference']) < 3 * table.loc['late_minus_early', 'se']


def test_early_late_withheld_with_few_selectors_and_windows_shrink_with_few_rounds():
    from analysis.curves import compare_early_late, early_late_shares
    tiny = _choices({'a': [1, 0, 1, 1], 'b': [0, 0, 1, 1]})
    table = early_late_shares(tiny, k_rounds=3, min_selectors=10)
    assert list(table['rounds']) == ['1-2', '3-4', '3-4 minus 1-2']  # k shrinks to 2 of 4 rounds
    assert table['se'].isna().all() and table['p_value'].isna().all()
    assert table['note'].str.startswith('withheld').all()
    assert compare_early_late(tiny).empty  # one treatment: nothing to contrast
