"""The llm policy against a real model: SmolLM2-135M-Instruct served by llama-cpp-python on 127.0.0.1.

The model is tiny, so these tests check format, validation, repeatability and the fallback path, not
the wisdom of its replies. Needs .venv-llm (bash scripts/setup_llm_server.sh); SKIP_REAL_LLM=1 skips.
"""
import json

import pytest

from ai_partners import GameView, broker, make_partner
from ai_partners.llm import extract_json_object
from llm_fixtures import llama_server_url  # noqa: F401

VIEW = GameView(role='candidate', round_number=3, num_rounds=10, endowment=10, multiplier=3,
                max_message_length=200, identity='disclosed', shown_as='AI',
                history=[dict(round=1, times_chosen=2, received=60, returned=38),
                         dict(round=2, times_chosen=0)])
# Generous: on an idle 2-core machine a call takes ~1 s, but CI machines can be very busy.
# A reply the model produced but that does not fit the schema is a legitimate, flagged outcome;
# a transport failure against a healthy local server is not.
MODEL_REPLY_REASONS = ('invalid_json', 'schema:')


def real_partner(base_url, key='S-real-g1-A1', **config):
    settings = dict(ai_policy='llm', llm_base_url=base_url, llm_model='smollm2', llm_api_key_env='',
                    llm_temperature=0.0, llm_seed=42, llm_max_tokens=80, llm_timeout_seconds=300)
    return make_partner({**settings, **config}, key)


def check_came_from_model(decision):
    assert decision.policy == 'llm' and decision.endpoint_host.startswith('127.0.0.1:')
    assert decision.raw_reply.strip(), 'the model sent an empty reply'
    assert decision.prompt_tokens and decision.prompt_tokens > 100  # the rules are in the prompt
    assert decision.completion_tokens and decision.completion_tokens > 0
    if decision.fallback:
        assert decision.fallback_reason.startswith(MODEL_REPLY_REASONS), decision.fallback_reason


@pytest.fixture(scope='module')
def message_decision(llama_server_url):
    return real_partner(llama_server_url).write_message(VIEW)


@pytest.fixture(scope='module')
def return_decision(llama_server_url):
    return real_partner(llama_server_url).decide_return(VIEW, amount_sent=10, amount_received=30,
                                                         counterpart='sel-1')


def test_message_is_parsed_from_the_model_or_a_flagged_fallback(message_decision):
    decision = message_decision
    check_came_from_model(decision)
    assert isinstance(decision.value, str) and 0 < len(decision.value) <= VIEW.max_message_length
    if not decision.fallback:
        assert extract_json_object(decision.raw_reply)['message'].strip() == decision.value
    else:
        assert decision.value == make_partner({}, 'S-real-g1-A1').write_message(VIEW).value


def test_return_is_parsed_from_the_model_or_a_flagged_fallback(return_decision):
    decision = return_decision
    check_came_from_model(decision)
    assert type(decision.value) is int and 0 <= decision.value <= 30
    if not decision.fallback:
        assert extract_json_object(decision.raw_reply)['return'] == decision.value


def test_temperature_zero_and_fixed_seed_repeat_the_reply(llama_server_url):
    partner = real_partner(llama_server_url)
    ask = lambda: partner.decide_return(VIEW, amount_sent=5, amount_received=15, counterpart='sel-2')  # noqa: E731
    # The first call may evaluate part of the prompt in a batch (llama.cpp reuses the previous
    # prompt's cache), which can shift logits in the last bits; the next two calls are computed alike.
    ask()
    first, second = ask(), ask()
    check_came_from_model(first)
    assert first.raw_reply == second.raw_reply
    assert (first.value, first.fallback_reason) == (second.value, second.fallback_reason)


def test_prompt_sent_holds_the_rules_round_and_own_history(message_decision, return_decision):
    system, user = (m['content'] for m in json.loads(return_decision.prompt))
    assert 'so you received 30 points' in user and '{"return"' in user
    decision = message_decision
    system, user = (m['content'] for m in json.loads(decision.prompt))
    assert 'multiplied by 3' in system and 'up to 10 points' in system
    assert 'Round 3 of 10.' in user and 'labelled as an AI' in user
    assert '- Round 1: 2 selectors chose you, you received 60 points, you returned 38.' in user
    assert '{"message"' in user


def test_broker_collects_real_model_decisions_for_several_candidates(llama_server_url):
    partners = {f'real-{i}': real_partner(llama_server_url, key=f'S-real-g1-A{i}') for i in range(2)}
    for key, partner in partners.items():
        broker.start(key, partner, 'message', VIEW)
    decisions = [broker.collect(key, partner, 'message', VIEW, deadline_seconds=300)
                 for key, partner in partners.items()]
    for decision in decisions:
        check_came_from_model(decision)
        assert decision.fallback_reason != 'deadline'
