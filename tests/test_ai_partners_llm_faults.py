"""The llm policy against a misbehaving loopback endpoint: every fault becomes a flagged scripted fallback."""
import json
import time

import pytest

from ai_partners import GameView, make_partner
from ai_partners import llm
from ai_partners.llm import extract_json_object, parse_return_reply, retry_after_seconds, ReplyProblem
from llm_fixtures import closed_port_url, fault_server, start_fault_server  # noqa: F401

VIEW = GameView(role='candidate', round_number=3, num_rounds=10, endowment=10, multiplier=3,
                max_message_length=60, identity='disclosed', shown_as='AI',
                history=[dict(round=1, times_chosen=2, received=60, returned=38)])


def partner_for(base_url, key='S1-g1-A1', **config):
    defaults = dict(ai_policy='llm', llm_base_url=base_url, llm_model='test-model',
                    llm_api_key_env='AI_PARTNERS_TEST_KEY', llm_timeout_seconds=3)
    return make_partner({**defaults, **config}, key)


def scripted_twin(key='S1-g1-A1'):
    return make_partner(dict(ai_policy='scripted'), key)


def ask_return(partner, received=30):
    return partner.decide_return(VIEW, amount_sent=received // 3, amount_received=received, counterpart='sel-abc')


def assert_fallback(decision, reason, key='S1-g1-A1'):
    """A fallback carries the reason and exactly the scripted policy's value for the same seat."""
    assert decision.fallback is True
    assert decision.fallback_reason == reason
    assert decision.policy == 'llm'
    twin = scripted_twin(key)
    if decision.decision == 'return':
        expected = ask_return(twin, received=30).value
    else:
        expected = twin.write_message(VIEW).value
    assert decision.value == expected


def test_correct_reply_is_parsed_with_tokens_model_host_and_prompt(fault_server):
    server = fault_server('ok')
    decision = ask_return(partner_for(server.base_url))
    assert decision.fallback is False and decision.fallback_reason == ''
    assert decision.value == 15  # the fault server returns half
    assert (decision.prompt_tokens, decision.completion_tokens) == (42, 7)
    assert decision.model == 'fault-server'
    assert decision.endpoint_host == server.base_url.split('//')[1].split('/')[0]
    assert decision.raw_reply == '{"return": 15}'
    assert decision.latency_ms > 0
    sent = server.requests[0]['body']
    assert json.loads(decision.prompt) == sent['messages']
    assert 'Round 3 of 10' in sent['messages'][1]['content']
    assert sent['model'] == 'test-model' and sent['seed'] == 0 and sent['max_tokens'] == 200
    assert sent['response_format'] == {'type': 'json_object'}
    assert server.requests[0]['path'] == '/v1/chat/completions'


def test_message_reply_is_parsed(fault_server):
    decision = partner_for(fault_server('ok').base_url).write_message(VIEW)
    assert decision.fallback is False
    assert decision.value == 'Choose me and I will return half of what I receive.'


def test_prompt_holds_only_own_history_and_the_label_shown(fault_server):
    server = fault_server('ok')
    hidden = GameView(role='candidate', round_number=2, num_rounds=10, endowment=10, multiplier=3,
                      identity='hidden', shown_as='', history=[dict(round=1, times_chosen=0)])
    partner_for(server.base_url).write_message(hidden)
    user = server.requests[0]['body']['messages'][1]['content']
    assert 'not told whether you are a human or an AI' in user
    assert '- Round 1: 0 selectors chose you.' in user


def test_trustee_prompt_uses_trust_game_rules_and_history(fault_server):
    server = fault_server('ok')
    trustee = GameView(role='trustee', round_number=2, num_rounds=5, endowment=10, multiplier=3, shown_as='Human',
                       identity='false_label', history=[dict(round=1, times_chosen=1, sent=4, received=12, returned=6)])
    decision = partner_for(server.base_url).decide_return(trustee, amount_sent=5, amount_received=15)
    assert decision.value == 7 and not decision.fallback
    system, user = (m['content'] for m in server.requests[0]['body']['messages'])
    assert 'investment game of 5 rounds' in system and 'candidate' not in system
    assert '- Round 1: your partner sent you 4 points, you received 12 points, you returned 6.' in user
    assert 'Your partner sees you labelled as a human.' in user
    assert 'Your partner sent you 5 points, so you received 15 points.' in user


def test_slow_endpoint_falls_back_with_timeout(fault_server):
    server = fault_server('slow', delay=3.0)
    started = time.monotonic()
    decision = ask_return(partner_for(server.base_url, llm_timeout_seconds=0.5))
    assert_fallback(decision, 'timeout')
    assert time.monotonic() - started < 1.5


def test_reply_dripping_past_the_timeout_falls_back_within_the_budget(fault_server):
    # Every byte arrives well within a read timeout; only the whole call overruns llm_timeout_seconds.
    server = fault_server('drip', delay=0.05)
    started = time.monotonic()
    decision = ask_return(partner_for(server.base_url, llm_timeout_seconds=1.0))
    assert_fallback(decision, 'timeout')
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize('status', [500, 503, 404, 401])
def test_http_error_falls_back_with_its_status(fault_server, status):
    server = fault_server('error', status=status)
    decision = ask_return(partner_for(server.base_url))
    assert_fallback(decision, f'http_{status}')
    assert 'injected HTTP' in decision.raw_reply
    assert len(server.requests) == 1  # only 429 is retried


def test_connection_refused_falls_back_with_connection_error():
    decision = partner_for(closed_port_url()).write_message(VIEW)
    assert_fallback(decision, 'connection_error')


def test_rate_limit_then_success_is_retried(fault_server):
    server = fault_server('rate_limited', fail_times=2, retry_after=0.2)
    decision = ask_return(partner_for(server.base_url))
    assert decision.fallback is False and decision.value == 15
    assert len(server.requests) == 3
    gaps = [b['time'] - a['time'] for a, b in zip(server.requests, server.requests[1:])]
    assert all(gap >= 0.18 for gap in gaps)  # Retry-After was honoured


def test_persistent_rate_limit_gives_up_after_max_attempts(fault_server):
    server = fault_server('rate_limited', fail_times=100, retry_after=0.05)
    decision = ask_return(partner_for(server.base_url))
    assert_fallback(decision, 'rate_limited')
    assert len(server.requests) == llm.MAX_ATTEMPTS


def test_rate_limit_wait_beyond_the_timeout_budget_gives_up_at_once(fault_server):
    server = fault_server('rate_limited', fail_times=100, retry_after=60)
    started = time.monotonic()
    decision = ask_return(partner_for(server.base_url, llm_timeout_seconds=2))
    assert_fallback(decision, 'rate_limited')
    assert time.monotonic() - started < 1.0 and len(server.requests) == 1


def test_rate_limit_without_retry_after_backs_off_exponentially(fault_server, monkeypatch):
    monkeypatch.setattr(llm, 'BACKOFF_BASE_SECONDS', 0.1)
    server = fault_server('rate_limited', fail_times=3, retry_after=None)
    decision = ask_return(partner_for(server.base_url))
    assert decision.fallback is False
    gaps = [b['time'] - a['time'] for a, b in zip(server.requests, server.requests[1:])]
    # Waits of 0.1, 0.2, 0.4 s plus request overhead: each gap at least its doubling wait.
    assert all(gap >= wait * 0.95 for gap, wait in zip(gaps, [0.1, 0.2, 0.4])), gaps


def test_malformed_json_falls_back_with_invalid_json(fault_server):
    decision = ask_return(partner_for(fault_server('malformed').base_url))
    assert_fallback(decision, 'invalid_json')
    assert decision.raw_reply.startswith('Sure!')


def test_body_that_is_not_a_chat_completion_falls_back(fault_server):
    assert_fallback(ask_return(partner_for(fault_server('not_completion').base_url)), 'bad_response')


@pytest.mark.parametrize('content, reason', [
    ('{"return": 31}', 'schema:return_out_of_range'),
    ('{"return": -1}', 'schema:return_out_of_range'),
    ('{"return": "12"}', 'schema:return_not_integer'),
    ('{"return": 12.5}', 'schema:return_not_integer'),
    ('{"return": true}', 'schema:return_not_integer'),
    ('{"return": 12, "reason": "fair"}', 'schema:extra_field:reason'),
    ('{"amount": 12}', 'schema:extra_field:amount'),
    ('{}', 'schema:missing_return'),
    ('[12]', 'schema:not_an_object'),
    ('', 'invalid_json'),
])
def test_non_conforming_return_reply_falls_back_with_schema_reason(fault_server, content, reason):
    decision = ask_return(partner_for(fault_server('content', content=content).base_url))
    assert_fallback(decision, reason)
    assert decision.raw_reply == content


@pytest.mark.parametrize('content, reason', [
    (json.dumps({'message': 'x' * 61}), 'schema:message_too_long'),
    (json.dumps({'message': '   '}), 'schema:empty_message'),
    (json.dumps({'message': 5}), 'schema:message_not_string'),
    (json.dumps({'message': 'hi', 'mood': 'happy'}), 'schema:extra_field:mood'),
])
def test_non_conforming_message_reply_falls_back_with_schema_reason(fault_server, content, reason):
    decision = partner_for(fault_server('content', content=content).base_url).write_message(VIEW)
    assert_fallback(decision, reason)


@pytest.mark.parametrize('content', [
    '```json\n{"return": 12}\n```',
    'Here is my decision: {"return": 12} Thanks!',
    'I think {maybe} this: {"return": 12}',
])
def test_json_inside_fences_or_prose_is_accepted(fault_server, content):
    decision = ask_return(partner_for(fault_server('content', content=content).base_url))
    assert decision.fallback is False and decision.value == 12


def test_unicode_and_newlines_in_a_message_survive(fault_server):
    text = 'Grüße! 🤝\nI return half.'
    decision = partner_for(fault_server('content', content=json.dumps({'message': text})).base_url).write_message(VIEW)
    assert decision.fallback is False and decision.value == text


def test_server_without_json_mode_is_retried_without_response_format(fault_server):
    server = fault_server('no_json_mode')
    decision = ask_return(partner_for(server.base_url))
    assert decision.fallback is False and decision.value == 15
    assert ['response_format' in r['body'] for r in server.requests] == [True, False]
    ask_return(partner_for(server.base_url))  # remembered: no failing request any more
    assert ['response_format' in r['body'] for r in server.requests] == [True, False, False]


def test_api_key_comes_only_from_the_named_environment_variable(fault_server, monkeypatch):
    server = fault_server('ok')
    monkeypatch.delenv('AI_PARTNERS_TEST_KEY', raising=False)
    ask_return(partner_for(server.base_url))
    monkeypatch.setenv('AI_PARTNERS_TEST_KEY', 'sk-test-123')
    ask_return(partner_for(server.base_url))
    headers = [{k.lower(): v for k, v in r['headers'].items()} for r in server.requests]
    assert 'authorization' not in headers[0]
    assert headers[1]['authorization'] == 'Bearer sk-test-123'


def test_malformed_api_key_is_never_sent_nor_stored(fault_server, monkeypatch):
    server = fault_server('ok')
    monkeypatch.setenv('AI_PARTNERS_TEST_KEY', 'sk-SECRET123\nsk-OTHER456')  # two keys pasted
    decision = ask_return(partner_for(server.base_url))
    assert_fallback(decision, 'bad_api_key')
    assert server.requests == []
    row = decision.as_row()
    assert not any('SECRET123' in str(value) or 'OTHER456' in str(value) for value in row.values())


def test_api_key_is_redacted_from_error_text(monkeypatch):
    monkeypatch.setenv('AI_PARTNERS_TEST_KEY', 'sk-SECRET123')

    def failing_call(self, messages):
        raise RuntimeError(f'header Bearer {self.api_key()} rejected')
    monkeypatch.setattr(llm.LLMPartner, 'call', failing_call)
    decision = ask_return(partner_for(closed_port_url()))
    assert_fallback(decision, 'error:RuntimeError')
    assert 'SECRET123' not in decision.raw_reply and '[API key]' in decision.raw_reply


def test_unexpected_client_error_is_a_flagged_fallback_not_a_crash(monkeypatch):
    def broken_call(self, messages):
        raise RuntimeError('bug in the client')
    monkeypatch.setattr(llm.LLMPartner, 'call', broken_call)
    decision = ask_return(partner_for(closed_port_url()))
    assert_fallback(decision, 'error:RuntimeError')
    assert decision.raw_reply == 'bug in the client'


def test_start_fault_server_helper_returns_url_and_stop():
    base_url, stop = start_fault_server('malformed')
    try:
        assert_fallback(ask_return(partner_for(base_url)), 'invalid_json')
    finally:
        stop()
    assert_fallback(ask_return(partner_for(base_url)), 'connection_error')


def test_extract_json_object_and_retry_after_parsing():
    assert extract_json_object('  {"a": 1}  ') == {'a': 1}
    with pytest.raises(ReplyProblem, match='invalid_json'):
        extract_json_object('no braces here')
    with pytest.raises(ReplyProblem, match='schema:return_out_of_range'):
        parse_return_reply('{"return": 4}', 3)
    assert retry_after_seconds('2') == 2.0
    assert retry_after_seconds(None) is None and retry_after_seconds('soon') is None
    assert retry_after_seconds('Wed, 21 Oct 2015 07:28:00 GMT') == 0.0  # a date in the past: no wait
