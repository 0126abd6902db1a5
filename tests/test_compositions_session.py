"""A short partner_selection bot session with compositions rotating over two groups and candidate capacity 1:
it completes, the exports carry the composition and the reassignment flag, and capacity holds."""
import pytest

from game_logic import export_schema
from otree_bots import BotJob

JOB = BotJob('check_ps_compositions', case=0, export=True)
MIXES = ['prosocial_ai:1,human_like:0', 'human_like:0.5,prosocial_ai']


@pytest.fixture(scope='module')
def run(otree_bot_runs):
    result = otree_bot_runs[JOB]
    assert result.ok, result.failure()
    return result


@pytest.mark.otree_bots(JOB)
def test_compositions_session_exports_the_mix_per_group_and_respects_capacity(run):
    decisions = run.rows('partner_selection_custom')
    candidates = run.rows('partner_selection_candidates')
    assert list(decisions[0]) == export_schema.DECISION_COLUMNS
    assert list(candidates[0]) == export_schema.CANDIDATE_COLUMNS
    by_group = {}
    for row in decisions + candidates:
        by_group.setdefault(row['group_id'], set()).add((row['treatment'], row['ai_composition']))
    # group g plays treatment and mix g mod 2, together
    assert sorted(v for values in by_group.values() for v in values) == [('disclosed', MIXES[1]), ('hidden', MIXES[0])]
    for row in candidates:
        assert int(row['times_chosen']) <= 1
    assert len(decisions) == 2 * 4 * 3  # 2 groups × (3 people + 1 AI selector) × 3 rounds
    moved = [row for row in decisions if row['choice_reassigned'] == '1']
    assert moved, 'four selectors on four cards of capacity 1: some round must move someone'
    for row in decisions:
        assert row['choice_reassigned'] in ('0', '1')
        assert row['chosen_candidate_id']  # 4 cards × 1 seat each the 4 selectors: nobody is left without
    policies = {(row['group_id'], row['candidate_id']): row['policy'] for row in candidates if row['kind'] == 'ai'}
    assert sorted(policies.values()) == sorted(['scripted:prosocial_ai:1', 'scripted:human_like:0',
                                                'scripted:human_like:0.5', 'scripted:prosocial_ai'])


@pytest.mark.otree_bots(JOB)
def test_population_engine_replays_the_compositions_session_cell_for_cell(run):
    """The people's decisions played again by population.engine.run: the AI seats' mix, their stated intentions,
    the capacity moves and the payoffs it works out itself equal the app's."""
    import pandas as pd

    from population.replay import replay_export

    read = dict(dtype=str, keep_default_na=False)
    decisions = pd.read_csv(run.export_path('partner_selection_custom'), **read)
    candidates = pd.read_csv(run.export_path('partner_selection_candidates'), **read)
    config_row = pd.read_csv(run.export_path('partner_selection_config'), **read).iloc[0].to_dict()
    result = replay_export(decisions, candidates, config_row)
    # the app lists its AI selectors after the people, the engine group by group: compare by seat
    key = ['group_id', 'round', 'selector_id']
    decisions = decisions.sort_values(key).reset_index(drop=True)
    ours = result.decisions_frame().astype(str).sort_values(key).reset_index(drop=True)
    for column in ('chosen_candidate_id', 'picked_candidate_id', 'choice_reassigned', 'amount_returned',
                   'selector_payoff', 'ai_composition', 'offered_messages_json'):
        assert ours[column].tolist() == decisions[column].tolist(), column
    mine = result.candidates_frame().astype(str)
    for column in ('message_json', 'times_chosen', 'returns', 'candidate_payoff', 'ai_composition'):
        assert mine[column].tolist() == candidates[column].tolist(), column
    ai = candidates['kind'] == 'ai'  # humans' policy is 'human' in the app
    assert mine[ai]['policy'].tolist() == candidates[ai]['policy'].tolist()
