"""The simulator writes the export schema, seeded, with the treatments' badges and flagged timeouts."""
import pandas as pd
import pytest

from analysis.io import CANDIDATE_COLUMNS, DECISION_COLUMNS, load_candidates, load_decisions, split_cards, write_export
from analysis.simulate import simulate_session


def test_exports_have_exactly_the_codebook_columns_and_validate(tmp_path):
    decisions, candidates = simulate_session('ewa', n_groups=3, n_rounds=4, timeout_rate=0.2, seed=1)
    assert list(decisions.columns) == DECISION_COLUMNS
    assert list(candidates.columns) == CANDIDATE_COLUMNS
    write_export(decisions, tmp_path / 'd.csv')
    write_export(candidates, tmp_path / 'c.csv')
    assert len(load_decisions(tmp_path / 'd.csv')) == 3 * 3 * 4
    assert len(load_candidates(tmp_path / 'c.csv')) == 3 * 4 * 4


def test_same_seed_same_session_other_seed_other_session():
    first, _ = simulate_session(seed=5)
    again, _ = simulate_session(seed=5)
    other, _ = simulate_session(seed=6)
    pd.testing.assert_frame_equal(first, again)
    assert not first['chosen_candidate_id'].equals(other['chosen_candidate_id'])


def test_badges_follow_the_treatment():
    decisions, _ = simulate_session('random', n_groups=3, n_rounds=2, seed=2)
    for _, row in decisions.iterrows():
        kinds = row['offered_kinds'].split(';')
        badges = row['offered_badges'].split(';')
        expected = {'hidden': ['' for _ in kinds],
                    'disclosed': ['AI' if k == 'ai' else 'Human' for k in kinds],
                    'false_label': ['Human' if k == 'ai' else 'AI' for k in kinds]}[row['treatment']]
        assert badges == expected


def test_timeouts_leave_choice_and_return_empty_and_pay_the_endowment():
    decisions, _ = simulate_session('random', n_groups=4, n_rounds=5, timeout_rate=0.3, elicit_beliefs=False, seed=3)
    timed_out = decisions[decisions['choice_timed_out'] == 1]
    assert len(timed_out) > 0
    assert (timed_out['chose_ai'] == '').all() and (timed_out['chosen_candidate_id'] == '').all()
    assert (timed_out['amount_sent'] == '').all() and (timed_out['amount_received_by_candidate'] == '').all()
    assert (timed_out['selector_payoff'] == 10).all()


def test_payoff_is_endowment_minus_sent_plus_returned_and_the_belief_bonus_is_paid_once():
    decisions, _ = simulate_session('random', n_groups=3, n_rounds=3, seed=4)
    chosen = decisions[decisions['choice_timed_out'] == 0]
    expected = 10 - chosen['amount_sent'] + chosen['amount_returned'].astype(int)
    assert (chosen['selector_payoff'] == expected).all()
    guessed = decisions[decisions['belief_guesses'] != '']
    assert (guessed.groupby('selector_id')['belief_round_paid'].sum() == 1).all()
    unpaid = guessed[guessed['belief_round_paid'] == 0]
    assert (unpaid['belief_bonus'] == 0).all()
    paid = guessed[guessed['belief_round_paid'] == 1]
    assert (paid['belief_bonus'] == paid['belief_n_correct']).all()
    assert (decisions.loc[decisions['belief_guesses'] == '', 'belief_round_paid'] == '').all()
    every = simulate_session('random', n_groups=3, n_rounds=3, seed=4, belief_payment='all_rounds')[0]
    assert (every.loc[every['belief_guesses'] != '', 'belief_round_paid'] == 1).all()
    assert (chosen['amount_returned'].astype(int) <= chosen['amount_received_by_candidate']).all()


def test_chance_level_follows_group_composition():
    decisions, _ = simulate_session('random', n_groups=2, n_human=3, n_ai=1, n_rounds=2, seed=5)
    assert (decisions['ai_share_offered'] == 0.25).all()
    assert (split_cards(decisions['offered_kinds']).map(lambda k: k.count('ai')) == 1).all()


@pytest.mark.parametrize('kwargs, message', [
    (dict(model='nonsense'), "unknown model 'nonsense'"),
    (dict(model='rescorla_wagner', params=dict(gamma=1)), "has no parameter(s) ['gamma']"),
    (dict(treatments=['secret']), "unknown treatment(s) ['secret']"),
    (dict(model='curve', params=dict(p0=0.5)), 'lack'),
])
def test_bad_simulation_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError) as info:
        simulate_session(**kwargs)
    assert message in str(info.value)


def test_selectors_draw_their_own_parameters_from_the_population():
    from analysis.simulate import Population
    population = dict(alpha=Population('beta', 0.3, 0.1), beta=Population('lognormal', 8.0, 3.0),
                      bias={'dist': 'normal', 'mean': -1.0, 'sd': 0.5})
    decisions, _ = simulate_session('rescorla_wagner', population, n_groups=300, n_rounds=1, elicit_beliefs=False,
                                    seed=7)
    drawn = pd.DataFrame(decisions.attrs['selector_params'])
    assert len(drawn) == 900 and drawn['selector_id'].is_unique
    # 900 draws: the sample mean lies within about 4 standard errors of the population mean
    for name, mean, sd in (('alpha', 0.3, 0.1), ('beta', 8.0, 3.0), ('bias', -1.0, 0.5)):
        assert abs(drawn[name].mean() - mean) < 4 * sd / 30, name
        assert drawn[name].std() == pytest.approx(sd, rel=0.15), name
    assert drawn['alpha'].between(0, 1).all() and (drawn['beta'] > 0).all()
    again, _ = simulate_session('rescorla_wagner', population, n_groups=300, n_rounds=1, elicit_beliefs=False, seed=7)
    assert again.attrs['selector_params'] == decisions.attrs['selector_params']


def test_parameters_can_differ_by_treatment():
    params = {'hidden': {'beta': 0.0}, 'disclosed': {'beta': 8.0, 'bias': -2.0, 'q0': 0.6}}
    decisions, _ = simulate_session('rescorla_wagner', params, treatments=['hidden', 'disclosed'], n_groups=4,
                                    n_rounds=2, elicit_beliefs=False, seed=1)
    drawn = pd.DataFrame(decisions.attrs['selector_params']).set_index('treatment')
    assert (drawn.loc['hidden', 'beta'] == 0).all() and (drawn.loc['hidden', 'bias'] == 0).all()
    assert (drawn.loc['disclosed', 'bias'] == -2).all() and (drawn.loc['disclosed', 'q0'] == 0.6).all()


def test_a_bad_population_is_rejected():
    from analysis.simulate import Population
    with pytest.raises(ValueError, match='beta population'):
        Population('beta', 0.5, 0.6)
    with pytest.raises(ValueError, match='unknown population distribution'):
        Population('cauchy', 0.0, 1.0)
