"""The headless population engine (population/): exports in the apps' schema, payoffs, the app's rules,
sweeps with shards and resume."""
import json

import pandas as pd
import pytest

from ai_partners.scripted import PRESETS, decision_rng, draw_return
from analysis.io import read_export
from game_logic import export_schema, round_engine, session_config
from game_logic.round_engine import HumanCandidateSeat, Return, RoundRules
from population import from_mapping, run, run_fast, write_exports
from population.cli import main
from population.engine import candidate_key
from population.sweep import merge_summaries, run_sweep
from otree_bots import BotJob
from test_otree_configs import SHORT_PS


def _exports(result, tmp_path):
    paths = write_exports(result, tmp_path)
    kinds = {}
    for name in ('decisions', 'candidates'):
        kind, frame = read_export(paths[name])
        assert kind == name
        kinds[name] = frame
    return paths, kinds


@pytest.mark.parametrize('engine', [run, run_fast])
def test_pair_and_small_society_exports_pass_read_export(engine, tmp_path):
    for name, values in (
        ('pair', dict(selectors_per_group=1, num_human_candidates=1, num_ai_candidates=1, rounds=4)),
        ('society', dict(groups=2, selectors_per_group=3, num_human_candidates=2, num_ai_candidates=2, rounds=5,
                         treatments='hidden,disclosed', elicit_beliefs=True)),
    ):
        config = from_mapping(values)
        paths, frames = _exports(engine(config), tmp_path / name)
        header = {n: pd.read_csv(paths[n], nrows=0).columns.tolist() for n in ('decisions', 'candidates', 'config')}
        assert header['decisions'] == export_schema.DECISION_COLUMNS
        assert header['candidates'] == export_schema.CANDIDATE_COLUMNS
        assert header['config'] == export_schema.CONFIG_COLUMNS
        assert len(frames['decisions']) == config.n_selectors * config.rounds
        assert len(frames['candidates']) == config.groups * config.session.num_candidates * config.rounds
        decisions = pd.read_csv(paths['decisions'], keep_default_na=False)
        for column in export_schema.DECISION_COLUMNS:
            if column not in ('selector_label', 'belief_guesses', 'belief_n_correct', 'belief_round_paid',
                              'chosen_badge', 'offered_badges', 'ai_composition'):
                assert (decisions[column].astype(str) != '').all(), column
        assert json.loads((tmp_path / name / 'population.json').read_text())['rounds'] == config.rounds


@pytest.mark.parametrize('engine', [run, run_fast])
def test_thousand_selector_society_exports_pass_read_export(engine, tmp_path):
    config = from_mapping(dict(selectors_per_group=1000, rounds=2, identity='hidden', elicit_beliefs=True))
    paths, frames = _exports(engine(config), tmp_path)
    decisions = frames['decisions']
    assert len(decisions) == 2000 and decisions['selector_id'].nunique() == 1000
    assert (decisions['group_selectors'].astype(int) == 1000).all()
    candidates = frames['candidates']
    assert candidates.groupby('round')['times_chosen'].sum().tolist() == [1000, 1000]
    config_row = pd.read_csv(paths['config'])
    assert config_row['num_selectors'].item() == 1000 and config_row['num_rounds'].item() == 2


def test_payoffs_to_the_point_in_a_hand_checked_pair():
    # One selector, one AI (prosocial_ai) and one human-like candidate; endowment 10, ×3, base pay 2.
    config = from_mapping(dict(selectors_per_group=1, num_human_candidates=1, num_ai_candidates=1, rounds=3,
                               endowment=10, multiplier=3, candidate_base_pay=2, identity='disclosed'))
    result = run(config)
    decisions, candidates = result.decisions_frame(), result.candidates_frame()
    for rnd in (1, 2, 3):
        d = decisions[decisions['round'] == rnd].iloc[0]
        preset = PRESETS['prosocial_ai' if d['chosen_kind'] == 'ai' else 'human_like']
        # the return the app's scripted partner would decide for this seat, round and selector
        key = candidate_key(config, 1, d['chosen_candidate_id'])
        back = draw_return(preset, decision_rng(config.session.ai_seed, key, rnd, 'return', d['selector_id']), 30)
        assert (d['amount_sent'], d['amount_received_by_candidate'], d['amount_returned']) == (10, 30, back)
        assert d['selector_payoff'] == 10 - 10 + back
        rows = candidates[candidates['round'] == rnd].set_index('candidate_id')
        chosen, other = d['chosen_candidate_id'], ({'A1', 'H1'} - {d['chosen_candidate_id']}).pop()
        assert rows.loc[chosen, 'candidate_payoff'] == 2 + 30 - back
        assert rows.loc[chosen, 'returns'] == str(back) and rows.loc[chosen, 'times_chosen'] == 1
        assert rows.loc[other, 'candidate_payoff'] == 2 and rows.loc[other, 'times_chosen'] == 0
        assert rows.loc[other, 'returns'] == ''


def _app_round_rules(config) -> RoundRules:
    """partner_selection/round_flow.round_rules, field for field, from the typed session config."""
    c = session_config.parse(dict(vars(config.session), num_selectors=1, num_rounds=1), num_rounds_max=1)
    return RoundRules(
        endowment=c.endowment, multiplier=c.multiplier, candidate_base_pay=c.candidate_base_pay,
        selector_chooses_amount=c.selector_chooses_amount, belief_bonus_per_correct=c.belief_bonus,
        dropout_after_timeouts=c.dropout_after_timeouts, persistent_labels=c.persistent_candidate_labels,
        belief_bonus_in_round_payoff=False)


def _replay_through_app_calls(config, decisions, candidates, check_draws: bool):
    """Feed the exported decisions (choices, returns) through round_engine as round_flow calls it, round by
    round and group by group, and compare every payoff and candidate cell with the export."""
    rules = _app_round_rules(config)
    cells = 0
    for (group, rnd), part in decisions.groupby(['group_id', 'round']):
        part = part.sort_values('selector_id', key=lambda s: s.str.extract(r's(\d+)$')[0].astype(int))
        mine = candidates[(candidates['group_id'] == group) & (candidates['round'] == rnd)]
        seats = [HumanCandidateSeat(cid, code, 0, False, False)
                 for cid, code in zip(mine['candidate_id'], mine['participant_code']) if cid.startswith('H')]
        engine_candidates = round_engine.round_candidates(seats, config.session.num_ai_candidates, rules)
        labels = round_engine.display_labels([c.candidate_id for c in engine_candidates], config.session_code,
                                             group, rnd, rules)
        choices, returns, bonuses = [], {}, {}
        messages = dict(zip(mine['candidate_id'], mine['message_json'].map(json.loads)))
        for _, d in part.iterrows():
            order = d['offered_candidate_ids'].split(';')
            if check_draws:  # the app's seeded letters and card order for this session, group, selector, round
                assert tuple(order) == round_engine.draw_card_order(engine_candidates, config.session_code,
                                                                    d['selector_id'], rnd)
                assert d['offered_display_labels'].split(';') == [labels[cid] for cid in order]
            shown = dict(zip(order, d['offered_display_labels'].split(';')))
            cards = round_engine.make_cards(order, shown, messages, d['treatment'])
            assert ';'.join(card.badge for card in cards) == d['offered_badges']
            assert json.loads(d['offered_messages_json']) == [card.message for card in cards]
            label = shown[d['chosen_candidate_id']]
            choices.append(round_engine.choose(d['selector_id'], cards, label, int(d['amount_sent']), rules))
            returns[d['selector_id']] = Return(int(d['amount_returned']))
        outcome = round_engine.settle_round(engine_candidates, choices, returns, rules, bonuses)
        for _, d in part.iterrows():
            assert outcome.selectors[d['selector_id']].payoff == d['selector_payoff']
            cells += 1
        for _, c in mine.iterrows():
            o = outcome.candidates[c['candidate_id']]
            assert (o.times_chosen, o.amount_received, o.amount_returned, o.returns, o.payoff) == (
                c['times_chosen'], c['amount_received'], c['amount_returned'], c['returns'], c['candidate_payoff'])
            cells += 1
    return cells


def test_engine_and_app_rules_give_the_same_payoffs_and_rows():
    """The engine's decisions fed through round_engine as partner_selection/round_flow.py calls it (its
    round_rules, round_candidates, display_labels, draw_card_order, make_cards, choose, settle_round) give
    the same letters, card orders, badges, payoffs and candidate rows as the engine's export."""
    config = from_mapping(dict(groups=3, selectors_per_group=4, num_human_candidates=2, num_ai_candidates=3, rounds=4,
                               treatments='hidden,disclosed,false_label', candidate_base_pay=1))
    result = run(config)
    decisions = result.decisions_frame()
    candidates = result.candidates_frame().fillna('')
    candidates['returns'] = candidates['returns'].astype(str)
    assert _replay_through_app_calls(config, decisions, candidates, check_draws=True) == 3 * 4 * (4 + 5)


def test_fast_engine_decisions_settle_the_same_through_round_engine():
    config = from_mapping(dict(groups=3, selectors_per_group=5, rounds=3, treatments='false_label,hidden',
                               candidate_base_pay=2))
    result = run_fast(config)
    decisions = result.decisions_frame()
    candidates = result.candidates_frame()
    assert _replay_through_app_calls(config, decisions, candidates, check_draws=False) == 3 * 3 * (5 + 4)


def test_learners_come_to_prefer_the_better_returning_ai_when_disclosed():
    config = from_mapping(dict(groups=20, selectors_per_group=50, rounds=15, identity='disclosed',
                               selector_params=dict(alpha=0.3, beta=10)))
    decisions = run_fast(config).decisions_frame()
    share = decisions.groupby('round')['chose_ai'].mean()
    assert share.iloc[:3].mean() < 0.6 < share.iloc[-3:].mean()


def test_quality_mix_gives_each_ai_candidate_its_preset():
    config = from_mapping(dict(selectors_per_group=2, num_ai_candidates=2, rounds=2,
                               ai_presets=['prosocial_ai', 'human_like']))
    candidates = run(config).candidates_frame().drop_duplicates('candidate_id').set_index('candidate_id')
    assert candidates.loc['A1', 'policy'] == 'scripted:prosocial_ai'
    assert candidates.loc['A2', 'policy'] == 'scripted:human_like'
    assert candidates.loc['H1', 'policy'] == 'scripted:human_like'


def test_unknown_fields_and_app_limits_are_refused():
    with pytest.raises(session_config.ConfigError, match='unknown field'):
        from_mapping(dict(selector_count=3))
    with pytest.raises(session_config.ConfigError, match='endowment'):
        from_mapping(dict(endowment=0))
    with pytest.raises(session_config.ConfigError, match='selector_policy'):
        from_mapping(dict(selector_policy='oracle'))


def test_cli_run_writes_exports_and_refuses_a_bad_field(tmp_path, capsys):
    assert main(['run', '--selectors', '3', '--rounds', '2', '--identity', 'hidden', '--out', str(tmp_path)]) == 0
    assert read_export(tmp_path / 'decisions.csv')[0] == 'decisions'
    assert main(['run', '--set', 'multiplier=0', '--out', str(tmp_path / 'bad')]) == 2
    assert 'error: ' in capsys.readouterr().err


GRID = """
[sweep]
engine = "fast"
early_rounds = 2
late_rounds = 2

[base]
groups = 2
rounds = 5

[grid]
selectors_per_group = [1, 4]
ai_share = [0.5]
num_candidates = [4]
identity = ["hidden", "disclosed"]
seed = [1, 2]
"""


def test_sharded_sweep_merged_equals_the_unsharded_sweep_and_resumes(tmp_path):
    grid = tmp_path / 'grid.toml'
    grid.write_text(GRID)
    whole = run_sweep(grid, tmp_path / 'whole', jobs=2, progress=None)
    assert len(whole) == 8 and (whole['curve_error'].fillna('') == '').all()
    run_sweep(grid, tmp_path / 'one', shard='1/2', progress=None)
    run_sweep(grid, tmp_path / 'two', shard='2/2', progress=None)
    merged = merge_summaries([tmp_path / 'one' / 'summary.csv', tmp_path / 'two' / 'summary.csv'])
    expected = pd.read_csv(tmp_path / 'whole' / 'summary.csv')
    pd.testing.assert_frame_equal(merged, expected)
    # both shards into one folder: its summary is the whole sweep's
    run_sweep(grid, tmp_path / 'both', shard='2/2', progress=None)
    both = run_sweep(grid, tmp_path / 'both', shard='1/2', progress=None)
    pd.testing.assert_frame_equal(both, whole)
    # resume: finished cells are skipped
    seen = []
    run_sweep(grid, tmp_path / 'whole', progress=seen.append)
    assert all('skipped' in line for line in seen) and len(seen) == 8
    assert set(whole['n_selectors']) == {2, 8} and (whole['chance_ai_share'] == 0.5).all()
    figure = tmp_path / 'late.png'
    assert main(['plot', str(tmp_path / 'whole' / 'summary.csv'), '--out', str(figure)]) == 0
    assert figure.read_bytes()[:4] == b'\x89PNG'


# ps_hidden's first bot case, 3 rounds, every custom export (the job test_partner_selection_export runs too),
# and ps_disclosed's timeouts case (timed-out choices and messages, a human candidate dropped in round 3)
TIMEOUTS_SESSION = BotJob('ps_disclosed', case='timeouts', overrides={'num_rounds': 4}, export=True)


@pytest.mark.otree_bots(SHORT_PS, TIMEOUTS_SESSION)
@pytest.mark.parametrize('bot_session', [SHORT_PS, TIMEOUTS_SESSION], ids=['hidden', 'disclosed_timeouts'])
def test_an_otree_bot_session_replayed_by_the_engine_gives_the_same_export_rows(otree_bot_runs, bot_session):
    """The people's decisions of an oTree bot session (choices, belief guesses, human messages and returns)
    played again by population.engine.run: the AI candidates' messages and returns, card letters and orders,
    badges, payoffs and belief payments it works out itself equal the app's, cell for cell."""
    from population.replay import replay_export
    bot = otree_bot_runs[bot_session]
    assert bot.ok, bot.failure()
    read = dict(dtype=str, keep_default_na=False)
    decisions = pd.read_csv(bot.export_path('partner_selection_custom'), **read)
    candidates = pd.read_csv(bot.export_path('partner_selection_candidates'), **read)
    config_row = pd.read_csv(bot.export_path('partner_selection_config'), **read).iloc[0].to_dict()
    result = replay_export(decisions, candidates, config_row)
    ours = result.decisions_frame().astype(str)
    # not decisions: the participant label, the seconds on the page (people's, not the rules') and who the
    # selector is (the app's are people, the replay's are its scripted agents)
    for column in set(export_schema.DECISION_COLUMNS) - {'selector_label', 'seconds_on_choice_page', 'selector_kind',
                                                         'selector_policy', 'selector_params'}:
        assert ours[column].tolist() == decisions[column].tolist(), column
    theirs = candidates[candidates['kind'] == 'ai'].reset_index(drop=True)
    mine = result.candidates_frame().astype(str)
    for column in export_schema.CANDIDATE_COLUMNS:  # every column; humans' policy is 'human' in the app
        if column != 'policy':
            assert mine[column].tolist() == candidates[column].tolist(), column
    assert mine[mine['kind'] == 'ai']['policy'].tolist() == theirs['policy'].tolist()


def test_fast_and_rules_engines_agree_in_distribution():
    """Different random streams, the same rules: AI-choice shares and mean returns by kind agree."""
    values = dict(groups=100, selectors_per_group=6, rounds=8, identity='hidden', selector_params=dict(beta=10))
    shares, returns = [], []
    for engine in (run, run_fast):
        decisions = engine(from_mapping(values)).decisions_frame()
        shares.append(decisions.groupby('round')['chose_ai'].mean().to_numpy())
        returns.append(decisions.groupby('chosen_kind')['amount_returned'].mean())
    assert abs(shares[0].mean() - shares[1].mean()) < 0.03 and abs(shares[0] - shares[1]).max() < 0.1
    assert abs(shares[0][-1] - shares[0][0]) > 0.1  # the agreement is not two flat lines
    for kind, mean in (('ai', 19.1), ('human', 11.4)):
        assert abs(returns[0][kind] - returns[1][kind]) < 0.8 and abs(returns[1][kind] - mean) < 0.8
