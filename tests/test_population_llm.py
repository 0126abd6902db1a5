"""LLM agents in the population engine (population/llm_agents.py) against a real loopback HTTP endpoint that
speaks the OpenAI chat-completions format: exports the analysis reads, every call logged, the same result
twice despite concurrency, faults falling back and flagged, calls overlapping up to llm_concurrency, bad
config refused. One test plays SmolLM2 through llama.cpp (`llama_server_url`, the real-LLM lane)."""
import json
import re
import threading
import time

import pandas as pd
import pytest

from analysis.ai_calls import call_summary
from analysis.io import detect_export_kind, load_ai_calls, read_export
from game_logic import export_schema
from game_logic.session_config import ConfigError
from population import from_mapping, run, run_fast, write_exports
from population.sweep import run_sweep

from llm_fixtures import FaultServer, closed_port_url, completion_body, valid_content_for, llama_server_url  # noqa: F401


class SocietyServer(FaultServer):
    """The fault server's valid replies, plus a valid choice for a selector's prompt (the first letter its reply
    form offers, and 'ai' for every card), after `delay` seconds; counts the calls in flight at once."""

    def __init__(self, delay: float = 0.0):
        super().__init__('ok', delay=delay)
        self.in_flight = 0
        self.most_in_flight = 0
        self._flight_lock = threading.Lock()

    def _answer(self, handler, body, count):
        with self._flight_lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            handler._send(200, completion_body(self.reply_to(body)))
        finally:
            with self._flight_lock:
                self.in_flight -= 1

    @staticmethod
    def reply_to(body) -> str:
        prompt = body['messages'][-1]['content']
        form = re.search(r'"card": "<one of ([A-Z, ]+)>"', prompt)
        if not form:
            return valid_content_for(body)
        letters = [x.strip() for x in form.group(1).split(',')]
        reply = dict(card=letters[0], reason='first card')
        if '"beliefs"' in prompt:
            reply['beliefs'] = {letter: 'ai' for letter in letters}
        return json.dumps(reply)


@pytest.fixture
def society_server():
    started = []

    def start(delay=0.0):
        server = SocietyServer(delay).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def llm_society(base_url, **extra):
    """2 groups of 3 LLM selectors; candidates H1, H2 scripted, A1 on the LLM, A2 scripted; hidden + beliefs."""
    return from_mapping(dict(dict(
        groups=2, selectors_per_group=3, num_human_candidates=2, num_ai_candidates=2, rounds=3,
        treatments='hidden,disclosed', elicit_beliefs=True, ai_policies=['llm', 'scripted'],
        selector_policy='llm', llm_base_url=base_url, llm_model='fake-model', llm_api_key_env='',
        llm_timeout_seconds=5, llm_concurrency=4), **extra))


def calls_per_run(config, decisions) -> int:
    """Messages of the LLM seat (one per group and round), every choice, a return per choice of A1."""
    messages = config.groups * config.rounds
    return messages + len(decisions) + int((decisions['chosen_candidate_id'] == 'A1').sum())


def test_llm_candidates_and_selectors_write_exports_the_analysis_reads_and_log_every_call(society_server,
                                                                                           tmp_path):
    server = society_server()
    config = llm_society(server.base_url)
    paths = write_exports(run(config), tmp_path)
    assert read_export(paths['decisions'])[0] == 'decisions' and read_export(paths['candidates'])[0] == 'candidates'
    # the analysis tells the AI-calls file from the others by its header, and reads it
    assert detect_export_kind(pd.read_csv(paths['ai_calls'], nrows=0).columns) == 'ai_calls'
    summary = call_summary(load_ai_calls(paths['ai_calls']), by=['decision'])
    assert summary['n_calls'].sum() == len(server.requests) and (summary['n_fallback'] == 0).all()
    decisions = pd.read_csv(paths['decisions'], keep_default_na=False)
    calls = pd.read_csv(paths['ai_calls'], keep_default_na=False)
    assert pd.read_csv(paths['ai_calls'], nrows=0).columns.tolist() == export_schema.AI_CALL_COLUMNS
    assert len(calls) == len(server.requests) == calls_per_run(config, decisions)
    assert calls.groupby('decision').size().to_dict() == {
        'message': 6, 'choice': 18, 'return': int((decisions['chosen_candidate_id'] == 'A1').sum())}
    assert (calls['fallback'] == 0).all() and (calls['policy'] == 'llm').all()
    assert (calls['prompt_tokens'] == 42).all() and (calls['completion_tokens'] == 7).all()
    # the choice the model made: the first card offered, guessed 'ai' every time
    assert (decisions['chosen_position'] == 1).all() and (decisions['choice_fallback'] == 0).all()
    assert (decisions['selector_policy'] == 'llm:fake-model').all()
    hidden = decisions[decisions['treatment'] == 'hidden']
    assert set(hidden['belief_guesses']) == {'ai;ai;ai;ai'}
    candidates = pd.read_csv(paths['candidates'], keep_default_na=False)
    a1 = candidates[candidates['candidate_id'] == 'A1']
    assert set(a1['policy']) == {'llm:fake-model'} and (a1['message_fallback'] == 0).all()
    assert set(a1['message_json'].map(json.loads)) == {'Choose me and I will return half of what I receive.'}
    assert (candidates[candidates['candidate_id'] == 'A2']['policy'] == 'scripted:prosocial_ai').all()
    returns = calls[calls['decision'] == 'return']['parsed_value'].astype(int)
    assert (returns == 15).all()  # half of the 30 received, as the endpoint answered
    # the selectors' prompts show the cards as the page does: no candidate ids, no kinds
    for prompt in calls[calls['decision'] == 'choice']['prompt_json'].map(json.loads):
        assert 'A1' not in prompt and 'H1' not in prompt and 'Candidate ' in prompt


def test_a_run_is_the_same_twice_whatever_order_the_replies_arrive_in(society_server):
    server = society_server(delay=0.02)
    config = llm_society(server.base_url, llm_concurrency=6)
    first, second = run(config), run(config)
    pd.testing.assert_frame_equal(first.decisions_frame(), second.decisions_frame())
    pd.testing.assert_frame_equal(first.candidates_frame(), second.candidates_frame())
    pd.testing.assert_frame_equal(first.ai_calls_frame().drop(columns='latency_ms'),
                                  second.ai_calls_frame().drop(columns='latency_ms'))
    # and the same as one call at a time
    one_by_one = run(llm_society(server.base_url, llm_concurrency=1))
    pd.testing.assert_frame_equal(first.decisions_frame(), one_by_one.decisions_frame())


def test_an_unreachable_endpoint_falls_back_and_flags_every_call():
    config = llm_society(closed_port_url(), llm_selector_fallback='random', rounds=2)
    result = run(config)
    calls, decisions, candidates = result.ai_calls_frame(), result.decisions_frame(), result.candidates_frame()
    assert len(calls) == calls_per_run(config, decisions)
    assert (calls['fallback'] == 1).all() and set(calls['fallback_reason']) == {'connection_error'}
    assert (decisions['choice_fallback'] == 1).all() and (decisions['selector_params'] == '').all()
    a1 = candidates[candidates['candidate_id'] == 'A1']
    assert (a1['message_fallback'] == 1).all() and (a1['message_timed_out'] == 0).all()
    assert (a1['message_length'] > 0).all()  # the preset's message, as the apps use a fallback's value
    chose_a1 = decisions[decisions['chosen_candidate_id'] == 'A1']
    assert len(chose_a1) and (chose_a1['return_fallback'] == 1).all()
    assert (decisions[decisions['chosen_candidate_id'] != 'A1']['return_fallback'] == 0).all()


def test_a_late_reply_counts_as_a_timed_out_decision(society_server):
    server = society_server(delay=1.0)
    config = llm_society(server.base_url, selector_policy='rescorla_wagner', rounds=1, groups=1,
                         llm_timeout_seconds=0.3)
    result = run(config)
    a1 = result.candidates_frame().set_index('candidate_id').loc['A1']
    assert (a1['message_timed_out'], a1['message_fallback'], a1['message_length']) == (1, 1, '')
    assert set(result.ai_calls_frame()['fallback_reason']) == {'timeout'}


def test_calls_of_a_round_overlap_up_to_llm_concurrency(society_server):
    def timed(concurrency):
        server = society_server(delay=0.2)
        # one round: 8 selectors' choices at once (the candidates are scripted)
        config = from_mapping(dict(selectors_per_group=8, rounds=1, selector_policy='llm', llm_base_url=server.base_url,
                                   llm_api_key_env='', llm_concurrency=concurrency))
        started = time.perf_counter()
        result = run(config)
        return time.perf_counter() - started, server, result

    seconds, server, result = timed(8)
    assert len(server.requests) == 8 and (result.ai_calls_frame()['fallback'] == 0).all()
    assert server.most_in_flight > 4 and seconds < 0.5 * 8 * 0.2  # one after the other would take 1.6 s
    seconds, server, _ = timed(2)
    assert server.most_in_flight == 2 and seconds > 3 * 0.2  # bounded: 4 waves of 2


def test_several_base_urls_share_the_calls_by_seat(society_server):
    one, two = society_server(), society_server()
    config = from_mapping(dict(selectors_per_group=4, rounds=2, selector_policy='llm', llm_api_key_env='',
                               llm_base_urls=[one.base_url, two.base_url]))
    calls = run(config).ai_calls_frame()
    assert len(one.requests) == len(two.requests) == 4
    hosts = calls.groupby('candidate_id')['endpoint_host'].agg(set)
    assert hosts['S1'] == hosts['S3'] != hosts['S2'] == hosts['S4']


def test_sweep_summary_counts_llm_calls_and_zero_for_cells_without(society_server, tmp_path):
    server = society_server()
    grid = tmp_path / 'grid.toml'
    grid.write_text(f"""
[sweep]
engine = "rules"
early_rounds = 1
late_rounds = 1
[base]
rounds = 2
selectors_per_group = 2
llm_base_url = "{server.base_url}"
llm_api_key_env = ""
[grid]
selector_policy = ["llm", "rescorla_wagner"]
""")
    summary = run_sweep(grid, tmp_path / 'out', progress=None).set_index('selector_policy')
    assert summary.loc['llm', 'llm_calls'] == 4 and summary.loc['llm', 'llm_fallbacks'] == 0
    assert summary.loc['llm', 'llm_prompt_tokens'] == 4 * 42 and summary.loc['llm', 'llm_completion_tokens'] == 4 * 7
    assert summary.loc['llm', 'llm_latency_ms_total'] > 0 and summary.loc['llm', 'llm_latency_ms_p95'] > 0
    no_llm = summary.loc['rescorla_wagner']
    assert (no_llm['llm_calls'], no_llm['llm_fallbacks'], no_llm['llm_prompt_tokens']) == (0, 0, 0)
    assert pd.isna(no_llm['llm_latency_ms_p95'])


def test_bad_llm_config_is_refused_with_the_field_named():
    for values, field in (
        (dict(ai_policies=['llm', 'oracle']), 'ai_policies'),
        (dict(llm_concurrency=0), 'llm_concurrency'),
        (dict(llm_concurrency=True), 'llm_concurrency'),
        (dict(llm_base_urls=['ftp://x']), 'llm_base_urls'),
        (dict(llm_base_urls='http://x/v1'), 'llm_base_urls'),
        (dict(selector_policy='llm', llm_selector_fallback='oracle'), 'llm_selector_fallback'),
        (dict(selector_policy='llm', llm_base_url='nowhere'), 'llm_base_url'),
        (dict(selector_policy='llm', selector_params=dict(delta=1)), 'selector_params'),
    ):
        with pytest.raises(ConfigError, match=field):
            from_mapping(values)
    with pytest.raises(ConfigError, match='rules engine'):
        run_fast(from_mapping(dict(ai_policies=['llm'])))


def test_a_sweep_of_llm_agents_on_the_fast_engine_is_refused_before_it_runs(tmp_path):
    grid = tmp_path / 'grid.toml'
    grid.write_text('[sweep]\nengine = "fast"\n[grid]\nselector_policy = ["llm"]\n')
    with pytest.raises(ValueError, match='rules'):
        run_sweep(grid, tmp_path / 'out', progress=None)
    assert not (tmp_path / 'out').exists()


def test_a_small_society_plays_against_a_real_model(llama_server_url, tmp_path):
    config = from_mapping(dict(selectors_per_group=2, num_human_candidates=1, num_ai_candidates=1, rounds=1,
                               ai_policies=['llm'], selector_policy='llm', llm_base_url=llama_server_url,
                               llm_api_key_env='', llm_max_tokens=80, llm_timeout_seconds=60, llm_concurrency=2))
    paths = write_exports(run(config), tmp_path)
    assert read_export(paths['decisions'])[0] == 'decisions'
    calls = pd.read_csv(paths['ai_calls'], keep_default_na=False)
    assert len(calls) >= 3  # a message, two choices, and a return per choice of A1
    assert (calls['endpoint_host'] != '').all() and (calls['raw_reply_json'].map(json.loads) != '').any()


def test_cli_runs_llm_agents_and_writes_the_ai_calls_export(society_server, tmp_path):
    from population.cli import main
    server = society_server()
    assert main(['run', '--selectors', '2', '--rounds', '1', '--policy', 'llm', '--set', 'ai_policies=["llm"]',
                 '--set', f'llm_base_url={server.base_url}', '--set', 'llm_api_key_env=', '--out', str(tmp_path)]) == 0
    calls = pd.read_csv(tmp_path / 'ai_calls.csv')
    assert len(calls) == len(server.requests) and set(calls['decision']) >= {'message', 'choice'}
    assert main(['run', '--engine', 'fast', '--policy', 'llm', '--out', str(tmp_path / 'fast')]) == 2
