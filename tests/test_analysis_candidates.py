"""Candidate behaviour: returns by kind, Cohen's d, messages, belief accuracy and misattribution."""
import numpy as np
import pandas as pd
import pytest

from analysis.candidates import (belief_accuracy, candidate_returns, cohens_d, kind_difference,
                                 message_length_by_kind, message_return_association, returns_by_kind)
from analysis.io import validate_candidates, validate_decisions
from analysis.simulate import simulate_session


def _validated(decisions, candidates):
    clean = lambda frame: frame.astype(str).replace({'nan': ''})  # noqa: E731
    return validate_decisions(clean(decisions)), validate_candidates(clean(candidates))


@pytest.fixture(scope='module')
def session():
    return _validated(*simulate_session('random', n_groups=60, n_rounds=10, message_return_slope=0.3, seed=12))


def test_returns_by_kind_matches_direct_computation():
    data = pd.DataFrame({'chosen_kind': ['ai', 'ai', 'ai', 'human', 'human', ''],
                         'amount_returned': [18, 20, 22, 5, 15, np.nan],
                         'return_share': [0.6, 2 / 3, 22 / 30, 1 / 6, 0.5, np.nan]})
    table = returns_by_kind(data).set_index('kind')
    assert table.loc['ai', 'n'] == 3 and table.loc['ai', 'mean'] == 20 and table.loc['ai', 'variance'] == 4
    assert table.loc['human', 'sd'] == pytest.approx(np.sqrt(50))
    # d = (20 − 10) / sqrt((2·4 + 1·50) / 3)
    assert cohens_d([18, 20, 22], [5, 15]) == pytest.approx(10 / np.sqrt(58 / 3))


def test_simulated_returns_match_the_anchor_study_defaults(session):
    decisions, candidates = session
    table = returns_by_kind(decisions).set_index('kind')
    assert table.loc['ai', 'mean'] == pytest.approx(19.1, abs=0.6)
    assert table.loc['human', 'mean'] == pytest.approx(11.4, abs=1.0)
    assert table.loc['human', 'variance'] > 2.5 * table.loc['ai', 'variance']
    difference = kind_difference(decisions).iloc[0]
    assert difference['cohens_d'] > 1 and difference['p_value'] < 1e-10
    from_candidates = returns_by_kind(candidate_returns(candidates), kind='kind').set_index('kind')
    pd.testing.assert_series_equal(from_candidates['mean'], table['mean'])


def test_message_length_by_kind_and_its_association_with_returns(session):
    _, candidates = session
    lengths = message_length_by_kind(candidates).set_index('kind')
    assert lengths.loc['ai', 'mean'] == pytest.approx(120, abs=5)
    assert lengths.loc['human', 'mean'] == pytest.approx(48, abs=5)
    association = message_return_association(candidates)
    within_kind = association[(association['analysis'] == 'ols_length_kind') & (association['term'] == 'length100')]
    # simulated: +0.3 return share per 100 characters beyond the kind's typical length; clipping returns
    # to 0..received attenuates it a little, so ask for a clearly positive slope beyond kind
    assert within_kind['ci_low'].iloc[0] > 0.1 and within_kind['estimate'].iloc[0] < 0.35
    assert association.set_index('analysis').loc['pearson', 'estimate'] > 0.3


def test_timed_out_messages_and_returns_stay_out_of_the_candidate_statistics(session):
    _, candidates = session
    data = candidates.copy()
    human = data.index[(data['kind'] == 'human') & (data['times_chosen'] > 0)][:20]
    # An absent human: no message written (an older export's length 0), returns 0 by rule.
    data.loc[human, ['message', 'message_length', 'message_timed_out', 'return_timed_out']] = ['', 0, 1, 1]
    data.loc[human, 'returns_list'] = data.loc[human, 'times_chosen'].map(lambda n: [0.0] * int(n))
    untouched = candidates.drop(index=human)
    assert message_length_by_kind(data).equals(message_length_by_kind(untouched))
    pd.testing.assert_frame_equal(returns_by_kind(candidate_returns(data), kind='kind'),
                                  returns_by_kind(candidate_returns(untouched), kind='kind'))
    n_used = message_return_association(data).set_index('analysis').loc['pearson', 'n']
    assert n_used == message_return_association(untouched).set_index('analysis').loc['pearson', 'n']


def test_belief_accuracy_counts_misattribution_both_ways():
    decisions = pd.DataFrame({
        'treatment': ['hidden', 'hidden', 'false_label', 'disclosed'],
        'selector_id': ['a', 'b', 'c', 'd'],
        'offered_kinds': ['ai;human;ai', 'human;ai;human', 'ai;human', 'ai;human'],
        'belief_guesses': ['human;human;ai', 'ai;ai;human', 'ai;human', ''],
    })
    table = belief_accuracy(decisions).set_index('treatment')
    assert 'disclosed' not in table.index  # no guesses elicited
    hidden = table.loc['hidden']
    assert hidden['n_judgements'] == 6 and hidden['accuracy'] == pytest.approx(4 / 6)
    assert hidden['ai_judged_human'] == pytest.approx(1 / 3)  # 1 of 3 AI cards taken for human
    assert hidden['human_judged_ai'] == pytest.approx(1 / 3)  # 1 of 3 human cards taken for AI
    assert table.loc['false_label', 'accuracy'] == 1.0
