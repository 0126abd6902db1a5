"""partner_selection sessions whose AI candidates use an LLM endpoint: a real local model, an endpoint
that is down, one that is too slow. Each runs a full bot session (scripts/bot_session.py, in-memory DB)
and checks the exports: every AI decision is logged, model decisions are the ones used, and every
failure is a flagged fallback while the session still completes."""
import json
from pathlib import Path

from ai_partners.llm import extract_json_object
from llm_fixtures import closed_port_url, fault_server, llama_server_url  # noqa: F401
from otree_bots import BotJob, run_bot_jobs

ROUNDS = 2
SELECTORS = 3


def run_llm_session(out: Path, base_url: str, **overrides) -> dict:
    settings = dict(
        num_rounds=ROUNDS, ai_policy='llm', llm_base_url=base_url, llm_model='smollm2-135m',
        llm_temperature=0, llm_seed=7, llm_max_tokens=80, llm_timeout_seconds=60, ai_collect_deadline_seconds=120,
    )
    settings.update(overrides)
    job = BotJob('ps_disclosed', case='normal', overrides=settings, export=True)
    run = run_bot_jobs([job], out, workers=1)[job]
    assert run.ok, run.failure()
    return {name: run.rows(f'partner_selection_{name}') for name in ('custom', 'candidates', 'ai_calls')}


def assert_session_complete(exports: dict):
    """Every selector has a decision row in every round: nothing was lost to the AI's faults."""
    rounds = sorted({int(r['round']) for r in exports['custom']})
    assert rounds == list(range(1, ROUNDS + 1))
    assert len(exports['custom']) == SELECTORS * ROUNDS
    ai_messages = [r for r in exports['ai_calls'] if r['decision'] == 'message']
    assert len(ai_messages) == 2 * ROUNDS  # two AI candidates, one message per round each
    chosen_ai = [r for r in exports['custom'] if r['chose_ai'] == '1']
    assert len([r for r in exports['ai_calls'] if r['decision'] == 'return']) == len(chosen_ai)


def test_real_model_writes_the_messages_and_returns_used_in_the_session(tmp_path, llama_server_url):
    exports = run_llm_session(tmp_path, llama_server_url)
    assert_session_complete(exports)
    calls = exports['ai_calls']
    assert all(c['policy'] == 'llm' and '127.0.0.1' in c['endpoint_host'] for c in calls)
    # a model decision carries its raw reply; anything else is a flagged fallback with a reason
    # (bad JSON, out of schema, or too slow on a loaded machine)
    decided = [c for c in calls if c['fallback'] == '0']
    assert decided, 'the model decided nothing: ' + str([c['fallback_reason'] for c in calls])
    assert all(json.loads(c['raw_reply_json']) and not c['fallback_reason'] for c in decided)
    for c in decided:  # the value used is the one in the model's own reply
        reply = extract_json_object(json.loads(c['raw_reply_json']))
        used = json.loads(c['parsed_value']) if c['decision'] == 'message' else int(c['parsed_value'])
        expected = reply['message'].strip() if c['decision'] == 'message' else reply['return']
        assert used == expected, (c['raw_reply_json'], c['parsed_value'])
    for c in calls:
        if c['fallback'] == '1':
            assert c['fallback_reason'] in ('invalid_json', 'timeout') or c['fallback_reason'].startswith('schema')
    assert all('Round' in json.loads(c['prompt_json']) or 'round' in json.loads(c['prompt_json']) for c in calls)
    messages = {(c['round'], c['candidate_id']): json.loads(c['parsed_value'])
                for c in calls if c['decision'] == 'message'}
    for row in exports['candidates']:
        if row['kind'] == 'ai':
            assert json.loads(row['message_json']) == messages[(row['round'], row['candidate_id'])]
            assert 0 < int(row['message_length']) <= 200
    # a return from the model (or its flagged fallback) is exactly what the selector got back
    returns = sorted(int(c['parsed_value']) for c in calls if c['decision'] == 'return')
    chosen_ai = [r for r in exports['custom'] if r['chose_ai'] == '1']
    assert returns == sorted(int(r['amount_returned']) for r in chosen_ai)
    for row in chosen_ai:
        assert 0 <= int(row['amount_returned']) <= int(row['amount_received_by_candidate'])
    print(f"{len(calls)} AI calls, {sum(c['fallback'] == '0' for c in calls)} decided by the model")


def test_unreachable_endpoint_falls_back_and_the_session_completes(tmp_path):
    exports = run_llm_session(tmp_path, closed_port_url(), llm_timeout_seconds=2)
    assert_session_complete(exports)
    calls = exports['ai_calls']
    assert {c['fallback'] for c in calls} == {'1'}
    assert {c['fallback_reason'] for c in calls} == {'connection_error'}
    assert all(r['return_fallback'] == '1' for r in exports['custom'] if r['chose_ai'] == '1')
    assert all(r['message_fallback'] == '1' for r in exports['candidates'] if r['kind'] == 'ai')


def test_endpoint_slower_than_the_llm_timeout_is_flagged_and_does_not_hold_the_session(tmp_path, fault_server):
    # llm_timeout_seconds must be below ai_collect_deadline_seconds (refused at session creation otherwise:
    # tests/test_session_creation.py), so a slow endpoint ends as a timed-out call before the deadline; the
    # broker's own deadline fallback is tested in tests/test_ai_partners_broker.py.
    slow = fault_server('slow', delay=4.0)
    exports = run_llm_session(tmp_path, slow.base_url, llm_timeout_seconds=1, ai_collect_deadline_seconds=2)
    assert_session_complete(exports)
    reasons = {c['fallback_reason'] for c in exports['ai_calls']}
    assert reasons == {'timeout'}, reasons
    assert all(r['message_timed_out'] == '1' for r in exports['candidates'] if r['kind'] == 'ai')
    # a return not made in time counts as a human's timed-out one, whatever the fallback's value was
    chosen_ai = [r for r in exports['custom'] if r['chose_ai'] == '1']
    assert chosen_ai and all(r['amount_returned'] == '0' and r['return_timed_out'] == '1' for r in chosen_ai)