"""AI selectors' pure parts (ai_partners/selectors.py): the learner plays the very rule analysis.learning_models
fits, parameters are given or drawn reproducibly, the LLM's reply is validated and every fault falls back to
the configured policy, flagged, and the prompt holds what the seat's page shows."""
import json

import numpy as np
import pytest

from ai_partners import broker, read_settings
from ai_partners.selectors import (PastRound, SelectorCard, SelectorSettings, SelectorView, choice_messages,
                                   learner_probabilities, make_selector, parse_choice_reply, perceived_kind,
                                   resolve_params, rule_choice)
from ai_partners.llm import ReplyProblem
from analysis.learning_models import AI, HUMAN, MODELS, Trials, negative_log_likelihood
from llm_fixtures import closed_port_url, fault_server  # noqa: F401

LONG = 'I will send back a fair share of everything you give me, every single round, you can count on it!'
SHORT = 'hey, half back'


def view(round_number=1, cards=None, past=(), history=(), **changes):
    cards = cards or (SelectorCard('B', '', SHORT), SelectorCard('K', '', LONG), SelectorCard('D', '', 'ok'))
    fields = dict(round_number=round_number, num_rounds=10, endowment=10, multiplier=3, max_message_length=200,
                  num_selectors=4, num_human=2, num_ai=1, ai_description='a computer program', identity_shown=False,
                  selector_chooses_amount=False, elicit_beliefs=False, belief_bonus=1,
                  belief_payment='one_random_round', persistent_labels=False, cards=cards, history=history,
                  past_rounds=past)
    fields.update(changes)
    return SelectorView(**fields)


# --- the learner is analysis.learning_models' rule -----------------------------------------------------

def played_rounds(seed: int, n_rounds: int, badges: bool):
    """Random rounds of one selector: cards (some badged), its choices and what came back."""
    rng = np.random.default_rng(seed)
    rounds = []
    for r in range(1, n_rounds + 1):
        cards = []
        for letter in 'BKDQ'[: rng.integers(2, 5)]:
            is_ai = bool(rng.integers(0, 2))
            badge = ('AI' if is_ai else 'Human') if badges else ''
            cards.append(SelectorCard(letter, badge, LONG if is_ai else SHORT))
        chosen = '' if rng.random() < 0.15 else cards[rng.integers(len(cards))].label  # some timeouts
        sent = 0 if not chosen else int(rng.integers(0, 11))  # 0 sent: nothing to learn from
        returned = int(rng.integers(0, 3 * sent + 1)) if sent else 0
        rounds.append(PastRound(r, tuple(cards), chosen, sent, returned))
    return rounds


def as_trials(rounds, threshold=80) -> Trials:
    """The same rounds as analysis' Trials, the cards' kinds as the selector perceives them."""
    width = max(len(r.cards) for r in rounds)
    kinds = np.full((1, len(rounds), width), -1, dtype=np.int8)
    ai_badge = np.zeros((1, len(rounds), width))
    chosen = np.full((1, len(rounds)), -1)
    reward = np.full((1, len(rounds)), np.nan)
    for t, r in enumerate(rounds):
        for c, card in enumerate(r.cards):
            kinds[0, t, c] = AI if perceived_kind(card, threshold) == 'ai' else HUMAN
            ai_badge[0, t, c] = float(card.badge == 'AI')
        if r.chosen_label:
            chosen[0, t] = [card.label for card in r.cards].index(r.chosen_label)
            if r.sent:
                reward[0, t] = r.returned / (r.sent * 3)
    return Trials(kinds, ai_badge, chosen, reward, ['s'], ['hidden'])


@pytest.mark.parametrize('model, theta', [
    ('rescorla_wagner', dict(alpha=0.4, beta=6.0, bias=0.7, q0=0.2)),
    ('ewa', dict(phi=0.7, delta=0.4, rho=0.6, beta=4.0, bias=-0.5, q0=0.5)),
])
@pytest.mark.parametrize('badges', [False, True], ids=['hidden', 'badged'])
def test_learner_choice_probabilities_are_the_likelihood_of_analysis_learning_models(model, theta, badges):
    rounds = played_rounds(seed=len(model) + badges, n_rounds=12, badges=badges)
    params = [theta[name] for name in MODELS[model]().params]
    fitted_model = MODELS[model](theta['q0'])
    ours = 0.0
    for t, current in enumerate(rounds):
        # the seat's round t: its cards now, its earlier rounds as memory
        probabilities = learner_probabilities(model, theta, view(t + 1, current.cards, past=rounds[:t]), 80)
        assert probabilities.sum() == pytest.approx(1.0)
        if current.chosen_label:
            ours -= np.log(probabilities[[c.label for c in current.cards].index(current.chosen_label)])
        theirs = negative_log_likelihood(fitted_model, np.array(params), as_trials(rounds[: t + 1]))[0]
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), t


def test_learner_prefers_the_kind_that_returned_more():
    cards = (SelectorCard('B', '', SHORT), SelectorCard('K', '', LONG))
    # long messages (read as AI) returned everything, short ones nothing
    past = [PastRound(r, cards, 'K' if r % 2 else 'B', 10, 30 if r % 2 else 0) for r in range(1, 7)]
    p = learner_probabilities('rescorla_wagner', dict(alpha=0.5, beta=20.0, bias=0.0), view(7, cards, past), 80)
    assert p[1] > 0.99
    settings = SelectorSettings('learner', params=dict(alpha=0.5, beta=20.0, bias=0.0), ai_seed=3)
    assert {rule_choice('learner', settings, view(7, cards, past), f'k{i}')['card'] for i in range(20)} == {'K'}


def test_perceived_kind_reads_the_badge_else_the_message_length():
    assert perceived_kind(SelectorCard('A', 'AI', SHORT), 80) == 'ai'
    assert perceived_kind(SelectorCard('A', 'Human', LONG), 80) == 'human'  # false_label: what is shown
    assert perceived_kind(SelectorCard('A', '', LONG), 80) == 'ai'
    assert perceived_kind(SelectorCard('A', '', SHORT), 80) == 'human'


def test_parameters_given_drawn_or_declared():
    spec = dict(alpha=0.25, beta=(2.0, 10.0))
    first = resolve_params(spec, 'rescorla_wagner', 7, 'sess-g1-S1')
    assert first['alpha'] == 0.25 and 2.0 <= first['beta'] <= 10.0
    assert first['bias'] == MODELS['rescorla_wagner']().params['bias'].init
    assert first['q0'] == pytest.approx(1 / 3, abs=1e-6)
    assert resolve_params(spec, 'rescorla_wagner', 7, 'sess-g1-S1') == first  # reproducible (a restart draws the same)
    draws = {resolve_params(spec, 'rescorla_wagner', 7, f'sess-g1-S{i}')['beta'] for i in range(1, 30)}
    assert len(draws) == 29 and min(draws) >= 2.0 and max(draws) <= 10.0


def test_random_and_learner_send_the_endowment_and_guess_perceived_kinds():
    v = view(elicit_beliefs=True)
    settings = SelectorSettings('random', ai_seed=1)
    picks = [rule_choice('random', settings, v, f'key{i}') for i in range(60)]
    assert {p['card'] for p in picks} == {'B', 'K', 'D'}
    assert {p['amount'] for p in picks} == {10}
    assert all(p['beliefs'] == ['human', 'ai', 'human'] for p in picks)


# --- the LLM selector --------------------------------------------------------------------------------------

def test_a_valid_reply_gives_card_amount_beliefs_and_reason():
    v = view(selector_chooses_amount=True, elicit_beliefs=True)
    reply = 'Sure! {"card": "K", "amount": 7, "beliefs": {"B": "human", "K": "AI", "D": "human"}, "reason": "kind"}'
    assert parse_choice_reply(reply, v) == dict(card='K', amount=7, beliefs=['human', 'ai', 'human'], reason='kind')
    assert parse_choice_reply('{"card": "Candidate D"}', view())['card'] == 'D'


@pytest.mark.parametrize('reply, reason', [
    ('{"card": "Q", "reason": "x"}', 'schema:invalid_card'),
    ('{"card": 2}', 'schema:card_not_string'),
    ('{"card": "B", "amount": 5}', 'schema:extra_field:amount'),  # the amount is not the selector's to choose
    ('{"reason": "no card"}', 'schema:missing_card'),
    ('I pick B', 'invalid_json'),
    ('{"card": "B", "reason": "' + 'x' * 501 + '"}', 'schema:reason_too_long'),
])
def test_a_bad_reply_is_refused_with_a_reason(reply, reason):
    with pytest.raises(ReplyProblem) as raised:
        parse_choice_reply(reply, view())
    assert raised.value.reason == reason


@pytest.mark.parametrize('reply, reason', [
    ('{"card": "B", "beliefs": {"B": "ai", "K": "ai", "D": "human"}}', 'schema:missing_amount'),
    ('{"card": "B", "amount": 11, "beliefs": {"B": "ai", "K": "ai", "D": "human"}}', 'schema:amount_out_of_range'),
    ('{"card": "B", "amount": "5", "beliefs": {"B": "ai", "K": "ai", "D": "human"}}', 'schema:amount_not_integer'),
    ('{"card": "B", "amount": 5, "beliefs": {"B": "ai", "K": "ai"}}', 'schema:beliefs_not_one_per_card'),
    ('{"card": "B", "amount": 5, "beliefs": {"B": "ai", "K": "robot", "D": "human"}}', 'schema:belief_not_ai_or_human'),
])
def test_amount_and_beliefs_are_checked_where_the_page_asks_for_them(reply, reason):
    with pytest.raises(ReplyProblem) as raised:
        parse_choice_reply(reply, view(selector_chooses_amount=True, elicit_beliefs=True))
    assert raised.value.reason == reason


def llm_selector(base_url, fallback='learner', **llm):
    settings = read_settings(dict(ai_policy='llm', llm_base_url=base_url, llm_timeout_seconds=llm.pop('timeout', 5),
                                  llm_model='test-model', **llm))
    return make_selector(SelectorSettings('llm', params=dict(alpha=0.3, beta=5.0, bias=0.0), fallback=fallback,
                                          ai_seed=4, llm=settings), 'sess-g1-S1')


def test_llm_choice_from_the_endpoint_is_used_and_logged(fault_server):
    server = fault_server('content', content='{"card": "D", "reason": "short and sweet"}')
    decision = llm_selector(server.base_url).decide('choice', view())
    assert not decision.fallback and decision.value == dict(card='D', amount=10, beliefs=[], reason='short and sweet')
    assert decision.policy == 'llm' and decision.endpoint_host.startswith('127.0.0.1')
    prompt = json.loads(decision.prompt)
    assert prompt == choice_messages(view())  # what was sent is recorded
    assert 'short and sweet' in decision.raw_reply


@pytest.mark.parametrize('fallback', ['learner', 'random'])
def test_a_card_not_offered_falls_back_to_the_configured_policy_flagged(fault_server, fallback):
    server = fault_server('content', content='{"card": "Z", "reason": "I like Z"}')
    selector = llm_selector(server.base_url, fallback=fallback)
    decision = selector.decide('choice', view())
    assert decision.fallback and decision.fallback_reason == 'schema:invalid_card'
    assert decision.value == rule_choice(fallback, selector.settings, view(), 'sess-g1-S1')
    assert json.loads(decision.prompt) == choice_messages(view())


def test_unreachable_and_slow_endpoints_fall_back_flagged(fault_server):
    assert llm_selector(closed_port_url()).decide('choice', view()).fallback_reason == 'connection_error'
    slow = fault_server('slow', delay=3.0)
    assert llm_selector(slow.base_url, timeout=0.5).decide('choice', view()).fallback_reason == 'timeout'
    assert llm_selector(fault_server('malformed').base_url).decide('choice', view()).fallback_reason == 'invalid_json'


def test_the_broker_runs_a_choice_in_the_background_and_falls_back_when_lost():
    selector = make_selector(SelectorSettings('random', ai_seed=2), 'sess-g1-S2')
    assert broker.start('sel-test-choice', selector, 'choice', view())
    decision = broker.collect('sel-test-choice', selector, 'choice', view(), deadline_seconds=5)
    assert not decision.fallback and decision.value['card'] in ('B', 'K', 'D')
    lost = broker.collect('sel-test-never-started', selector, 'choice', view(), deadline_seconds=0)
    assert lost.fallback and lost.fallback_reason == 'not_started' and lost.value['card'] in ('B', 'K', 'D')
    with pytest.raises(TypeError):
        broker.start('sel-test-bad', selector, 'choice', object())


def test_the_prompt_shows_cards_badges_history_and_rules_as_the_page_does():
    cards = (SelectorCard('B', 'Human', 'line one\nline "two" <b>'), SelectorCard('K', 'AI', LONG))
    history = [dict(round=1, label='K', badge='AI', sent=10, returned=17, timed_out=False),
               dict(round=2, label='—', badge='', sent=0, returned=0, timed_out=True)]
    system, user = (m['content'] for m in choice_messages(view(3, cards, history=history, identity_shown=True)))
    assert '- Candidate B [label: Human]: ' + json.dumps('line one\nline "two" <b>') in user
    assert '- Candidate K [label: AI]: ' + json.dumps(LONG) in user
    assert '- Round 1: Candidate K (label AI), you sent 10, returned to you 17.' in user
    assert '- Round 2: no choice (time ran out).' in user
    assert 'Each candidate carries a label saying "AI" or "Human".' in system
    hidden = choice_messages(view(3, tuple(SelectorCard(c.label, '', c.message) for c in cards)))
    assert '[label:' not in hidden[1]['content']
    assert 'You will not be told which candidate is which.' in hidden[0]['content']


def test_the_prompt_states_the_capacity_rule_as_the_rules_box_does():
    from pathlib import Path
    system = choice_messages(view(candidate_capacity=2))[0]['content']
    rule = 'A candidate can take at most 2 selectors per round.'
    assert rule in system
    # the same sentence as the human's rules box (partner_selection/rules.html)
    page = (Path(__file__).resolve().parents[1] / 'partner_selection' / 'rules.html').read_text()
    assert 'is moved, at random, to one of the other candidates with room, and is told so with the results.' in page
    assert 'is moved, at random, to one of the other candidates with room, and is told so with the results.' in system
    assert 'at most 1 selector per round.' in choice_messages(view(candidate_capacity=1))[0]['content']
    assert 'can take at most' not in choice_messages(view())[0]['content']


def test_a_bad_selector_setting_is_refused():
    with pytest.raises(ValueError, match='policy must be one of'):
        SelectorSettings('oracle')
    with pytest.raises(ValueError, match='fallback must be one of'):
        SelectorSettings('llm', fallback='llm')
    with pytest.raises(ValueError, match='needs the endpoint settings'):
        SelectorSettings('llm')
    with pytest.raises(ValueError, match='card letters must be unique'):
        view(cards=(SelectorCard('B', '', 'x'), SelectorCard('B', '', 'y')))
