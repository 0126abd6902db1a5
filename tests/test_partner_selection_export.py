"""The partner_selection exports as a researcher gets them (`otree test ps_disclosed --export DIR` and the
candidate / AI-call exports of scripts/bot_session.py), checked against game_logic.export_schema, and
`python -m analysis report` on them."""
import json
import subprocess
import sys

import pytest

from game_logic import export_schema
from otree_bots import REPO, BotJob
from test_otree_configs import SHORT_PS, config_job

MESSAGE_FROM_BOTS = 'Hi selectors!\nI return half 🙂 <b>promise</b>'  # partner_selection/tests.py MESSAGE
# `otree test ps_disclosed --export`: every bot case, the config's 5 participants (the same bot sessions
# as tests/test_otree_configs.py's ps_disclosed run, so they run once)
DISCLOSED = config_job('ps_disclosed', 5)
# `scripts/bot_session.py ps_hidden --set num_rounds=3`: the first bot case, every custom export
HIDDEN = SHORT_PS
pytestmark = pytest.mark.otree_bots(DISCLOSED, HIDDEN)


@pytest.fixture(scope='module')
def exports(otree_bot_runs, tmp_path_factory):
    disclosed, hidden = otree_bot_runs[DISCLOSED], otree_bot_runs[HIDDEN]
    assert disclosed.ok, disclosed.failure()
    assert hidden.ok, hidden.failure()
    return dict(
        paths=dict(decisions=disclosed.export_path('partner_selection_custom'), extra=hidden.out,
                   project=tmp_path_factory.mktemp('ps_export')),
        decisions=disclosed.rows('partner_selection_custom'),
        hidden_decisions=hidden.rows('partner_selection_custom'),
        candidates=hidden.rows('partner_selection_candidates'),
        ai_calls=hidden.rows('partner_selection_ai_calls'),
    )


def test_otree_test_export_writes_the_decision_columns_of_the_schema(exports):
    assert list(exports['decisions'][0].keys()) == export_schema.DECISION_COLUMNS


def test_candidate_and_ai_call_exports_have_the_schema_columns(exports):
    assert list(exports['candidates'][0].keys()) == export_schema.CANDIDATE_COLUMNS
    assert list(exports['ai_calls'][0].keys()) == export_schema.AI_CALL_COLUMNS


def test_one_decision_row_per_selector_and_round_with_chance_level(exports):
    rows = exports['decisions']
    # ps_disclosed: 5 participants = 1 group of 3 selectors, 10 rounds; the bot cases run one session each
    per_session = {}
    for row in rows:
        per_session.setdefault(row['session_code'], []).append(row)
    for session_rows in per_session.values():
        pairs = {(r['selector_id'], r['round']) for r in session_rows}
        assert len(pairs) == len(session_rows) <= 3 * 10
    for row in rows:
        assert row['treatment'] == 'disclosed'
        share = int(row['n_ai_offered']) / int(row['n_candidates_offered'])
        assert float(row['ai_share_offered']) == pytest.approx(share, abs=1e-6)
        if row['choice_timed_out'] == '1':
            assert row['chosen_candidate_id'] == row['chose_ai'] == ''
            assert row['amount_sent'] == row['amount_received_by_candidate'] == row['amount_returned'] == ''
            assert int(row['selector_payoff']) == 10
        else:
            assert row['chose_ai'] == ('1' if row['chosen_kind'] == 'ai' else '0')
            assert int(row['selector_payoff']) == 10 - int(row['amount_sent']) + int(row['amount_returned'])


def test_newlines_and_unicode_in_messages_survive_the_export(exports):
    offered = [m for row in exports['decisions'] for m in json.loads(row['offered_messages_json'])]
    assert MESSAGE_FROM_BOTS in offered
    human_messages = [json.loads(r['message_json']) for r in exports['candidates'] if r['kind'] == 'human']
    assert MESSAGE_FROM_BOTS in human_messages
    for r in exports['candidates']:
        message = json.loads(r['message_json'])
        if r['message_timed_out'] == '1' and not message:  # nothing written: no length, not 0
            assert r['message_length'] == ''
        else:
            assert int(r['message_length']) == len(message)


def test_hidden_treatment_exports_no_badges_and_scored_beliefs(exports):
    for row in exports['hidden_decisions']:
        assert set(row['offered_badges'].split(';')) == {''}
        guesses = row['belief_guesses'].split(';')
        kinds = row['offered_kinds'].split(';')
        assert len(guesses) == len(kinds)
        assert int(row['belief_n_correct']) == sum(g == k for g, k in zip(guesses, kinds))


def test_hidden_treatment_pays_one_round_of_guesses_per_selector(exports):
    # belief_payment defaults to one_random_round; belief_bonus is what was paid for that round's guesses
    paid_rounds = {}
    for row in exports['hidden_decisions']:
        assert row['belief_round_paid'] in ('0', '1')
        paid = row['belief_round_paid'] == '1'
        assert int(row['belief_bonus']) == (int(row['belief_n_correct']) if paid else 0)  # belief_bonus = 1
        paid_rounds.setdefault(row['selector_id'], []).extend([row['round']] * paid)
    assert paid_rounds and all(len(rounds) == 1 for rounds in paid_rounds.values()), paid_rounds


def test_every_ai_message_and_return_is_logged_once(exports):
    calls = exports['ai_calls']
    ai_rows = [r for r in exports['candidates'] if r['kind'] == 'ai']
    assert len([c for c in calls if c['decision'] == 'message']) == len(ai_rows)
    chosen_ai = [r for r in exports['hidden_decisions'] if r['chose_ai'] == '1']
    assert len([c for c in calls if c['decision'] == 'return']) == len(chosen_ai)
    assert {c['policy'] for c in calls} == {'scripted'}


def test_analysis_report_runs_on_the_fresh_otree_exports(exports):
    """Issue #5 end to end: `otree test ps_disclosed --export DIR`, then `python -m analysis report`."""
    paths = exports['paths']
    for decisions, candidates, name in [
        (paths['decisions'], None, 'report_disclosed'),
        (paths['extra'] / 'partner_selection_custom.csv', paths['extra'] / 'partner_selection_candidates.csv',
         'report_hidden'),
    ]:
        out = paths['project'] / name
        command = [sys.executable, '-m', 'analysis', 'report', str(decisions), '--out', str(out), '--no-progress',
                   '--n-boot', '200', '--curve-boot', '20']
        if candidates:
            command += ['--candidates', str(candidates)]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        html = (out / 'report.html').read_text(encoding='utf8')
        assert 'ai_choice_by_round.png' in html and (out / 'ai_choice_by_round.png').stat().st_size > 1000
        assert 'Traceback' not in html
