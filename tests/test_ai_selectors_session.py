"""partner_selection sessions with AI selectors beside the human bots: two LLM selectors (the real local model,
or an endpoint that is down) and one learner. Each runs a short bot session (scripts/bot_session.py, in-memory
DB): the session completes, the decisions export marks every selector's kind and policy, every AI choice is
an AI-calls row with its prompt, and a fault is the fallback policy's choice, flagged; the report splits the
AI-choice share by selector kind."""
import json
from pathlib import Path

from analysis.report import build_report
from llm_fixtures import closed_port_url, llama_server_url  # noqa: F401
from otree_bots import BotJob, run_bot_jobs

ROUNDS = 2
HUMAN_SELECTORS = 3  # ps_hidden: 3 selectors, 2 human and 2 AI candidates
POLICIES = ['llm', 'llm', 'learner']
LEARNER_PARAMS = '{"alpha": 0.3, "beta": [2, 10]}'


def run_session(out: Path, base_url: str, **overrides) -> dict:
    settings = dict(
        num_rounds=ROUNDS, num_ai_selectors=len(POLICIES), ai_selector_policies=','.join(POLICIES),
        ai_selector_params=LEARNER_PARAMS, llm_base_url=base_url, llm_model='smollm2-135m', llm_temperature=0,
        llm_seed=7, llm_max_tokens=120, llm_timeout_seconds=60, ai_collect_deadline_seconds=120,
    )
    settings.update(overrides)
    job = BotJob('ps_hidden', case='normal', overrides=settings, export=True)
    run = run_bot_jobs([job], out, workers=1)[job]
    assert run.ok, run.failure()
    exports = {name: run.rows(f'partner_selection_{name}') for name in ('custom', 'candidates', 'ai_calls')}
    exports['folder'] = run.out
    return exports


def assert_selectors_marked(exports: dict) -> list:
    """Every selector has a row every round, marked human or AI with its policy; the AI rows, S1..S3."""
    rows = exports['custom']
    assert sorted({int(r['round']) for r in rows}) == list(range(1, ROUNDS + 1))
    assert len(rows) == (HUMAN_SELECTORS + len(POLICIES)) * ROUNDS
    humans = [r for r in rows if r['selector_kind'] == 'human']
    ai = [r for r in rows if r['selector_kind'] == 'ai']
    assert len(humans) == HUMAN_SELECTORS * ROUNDS and {r['selector_policy'] for r in humans} == {'human'}
    assert all(r['selector_params'] == '' and r['choice_fallback'] == '0' for r in humans)
    for r in ai:
        seat = int(r['selector_id'].rsplit('-S', 1)[1])
        policy = POLICIES[seat - 1]
        assert r['selector_policy'] == ('llm:smollm2-135m' if policy == 'llm' else 'learner:rescorla_wagner')
        params = json.loads(r['selector_params'])  # the learner's, also the llm selectors' fallback
        assert params['alpha'] == 0.3 and 2 <= params['beta'] <= 10
        assert r['chosen_candidate_id'] and r['choice_timed_out'] == '0'  # an AI selector always chooses
        assert int(r['selector_payoff']) == 10 - int(r['amount_sent']) + int(r['amount_returned'])
        assert r['belief_guesses'].count(';') == int(r['n_candidates_offered']) - 1  # ps_hidden elicits beliefs
    # every AI choice is one AI call, and the card it names is the card chosen
    calls = {(c['round'], c['candidate_id']): c for c in exports['ai_calls'] if c['decision'] == 'choice'}
    assert len(calls) == len(ai)
    for r in ai:
        call = calls[(r['round'], 'S' + r['selector_id'].rsplit('-S', 1)[1])]
        value = json.loads(call['parsed_value'])
        labels = r['offered_display_labels'].split(';')
        assert value['card'] == labels[int(r['chosen_position']) - 1]
        assert value['beliefs'] == r['belief_guesses'].split(';')
        assert call['fallback'] == r['choice_fallback']
    # human candidates return to AI selectors as to people: their counts include them
    for c in exports['candidates']:
        chosen_by = [r for r in rows if r['round'] == c['round'] and r['chosen_candidate_id'] == c['candidate_id']]
        assert int(c['times_chosen']) == len(chosen_by)
    return ai


def llm_choice_calls(exports: dict) -> list:
    return [c for c in exports['ai_calls'] if c['decision'] == 'choice' and c['policy'] == 'llm']


def test_human_bots_two_llm_selectors_and_a_learner_complete_a_session_with_the_real_model(tmp_path,
                                                                                            llama_server_url):
    exports = run_session(tmp_path, llama_server_url)
    assert_selectors_marked(exports)
    calls = llm_choice_calls(exports)
    assert len(calls) == 2 * ROUNDS
    for c in calls:
        prompt = json.loads(json.loads(c['prompt_json']))
        assert 'Round' in prompt[1]['content'] and '- Candidate ' in prompt[1]['content']
        assert '127.0.0.1' in c['endpoint_host']
        if c['fallback'] == '0':  # the model's own answer is the one used
            reply = json.loads(c['raw_reply_json'])
            assert json.loads(c['parsed_value'])['card'] in reply
        else:  # a 135M model often answers off the schema; anything else would be a bug
            assert c['fallback_reason'] in ('invalid_json', 'timeout') or c['fallback_reason'].startswith('schema:')
    learner = [c for c in exports['ai_calls'] if c['decision'] == 'choice' and c['policy'] == 'learner']
    assert len(learner) == ROUNDS and {c['fallback'] for c in learner} == {'0'}
    print(f"{sum(c['fallback'] == '0' for c in calls)} of {len(calls)} LLM choices by the model; reasons "
          f"{[c['fallback_reason'] for c in calls]}")


def test_an_unreachable_endpoint_gives_the_learners_choice_flagged_and_the_report_splits_selectors(tmp_path):
    exports = run_session(tmp_path / 'session', closed_port_url(), llm_timeout_seconds=2)
    ai = assert_selectors_marked(exports)
    calls = llm_choice_calls(exports)
    assert len(calls) == 2 * ROUNDS
    assert {c['fallback'] for c in calls} == {'1'} and {c['fallback_reason'] for c in calls} == {'connection_error'}
    assert all(c['prompt_json'] not in ('', '""') for c in calls)  # the prompt that would have been sent
    flagged = [r for r in ai if r['selector_policy'].startswith('llm')]
    assert flagged and {r['choice_fallback'] for r in flagged} == {'1'}
    assert {r['choice_fallback'] for r in ai if r['selector_policy'].startswith('learner')} == {'0'}
    # the report compares the kinds of selectors
    folder = exports['folder']
    build_report(folder / 'partner_selection_custom.csv', tmp_path / 'report', mixed='off', n_boot=0, curve_boot=0,
                 curve_perm=0, progress=False)
    table = (tmp_path / 'report' / 'ai_choice_by_selector_kind.csv').read_text(encoding='utf8').splitlines()
    assert table[0] == 'treatment,selector_kind,round,n_choices,n_ai_chosen,share_ai,chance'
    overall = {line.split(',')[1]: int(line.split(',')[3]) for line in table[1:] if line.split(',')[2] == 'all'}
    assert overall == {'ai': len(POLICIES) * ROUNDS, 'human': HUMAN_SELECTORS * ROUNDS}
    # the estimates use the human selectors only (--selectors auto), the table above both kinds
    import json
    results = json.loads((tmp_path / 'report' / 'results.json').read_text(encoding='utf8'))
    assert results['selectors'] == 'human'
    assert sum(t['n_choices'] for t in results['treatments'].values()) <= HUMAN_SELECTORS * ROUNDS
