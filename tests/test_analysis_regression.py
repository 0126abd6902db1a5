"""Mixed logit and GEE: tidy output, agreement with each other and with a plain logit, right signs."""
import numpy as np
import pytest
import statsmodels.formula.api as smf

from analysis.io import validate_decisions
from analysis.regression import TIDY_COLUMNS, gee_logit, mixed_logit, regression_frame
from analysis.simulate import simulate_session


@pytest.fixture(scope='module')
def decisions():
    truth = {'hidden': dict(p0=0.5, p_inf=0.5, k=0.3), 'disclosed': dict(p0=0.2, p_inf=0.8, k=0.3)}
    data, _ = simulate_session('curve', truth, treatments=['hidden', 'disclosed'], n_groups=30, n_rounds=10,
                               timeout_rate=0.02, elicit_beliefs=False, seed=8)
    return validate_decisions(data.astype(str).replace({'nan': ''}))


def test_gee_and_mixed_logit_return_tidy_tables(decisions):
    gee = gee_logit(decisions)
    mixed = mixed_logit(decisions, seed=1)
    assert list(gee.columns) == TIDY_COLUMNS and list(mixed.columns) == TIDY_COLUMNS
    terms = ['Intercept', 'C(treatment)[T.disclosed]', 'round0', 'round0:C(treatment)[T.disclosed]']
    assert gee['term'].tolist() == terms
    assert mixed['term'].tolist() == terms + ['sd(selector)', 'sd(group)']
    assert (gee['ci_low'] < gee['estimate']).all() and (gee['estimate'] < gee['ci_high']).all()


def test_learning_in_disclosed_shows_as_round_by_treatment_interaction(decisions):
    for table in (gee_logit(decisions), mixed_logit(decisions, seed=1)):
        rows = table.set_index('term')
        assert rows.loc['C(treatment)[T.disclosed]', 'estimate'] < 0  # fewer AI choices in round 1
        assert rows.loc['round0:C(treatment)[T.disclosed]', 'estimate'] > 0  # then more each round
        assert rows.loc['round0:C(treatment)[T.disclosed]', 'p_value'] < 0.001
        assert abs(rows.loc['round0', 'estimate']) < 0.1  # hidden is flat


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
