"""The broker: decisions run concurrently in the background; collect never waits past its deadline."""
import time

import pytest

from ai_partners import GameView, broker, make_partner
from ai_partners.background import DecisionBroker
from ai_partners.partners import ScriptedPartner
from llm_fixtures import fault_server  # noqa: F401

VIEW = GameView(role='candidate', round_number=2, num_rounds=10, endowment=10, multiplier=3)
RETURN = dict(amount_sent=10, amount_received=30, counterpart='sel-abc')


def llm_partner(base_url, key):
    return make_partner(dict(ai_policy='llm', llm_base_url=base_url, llm_timeout_seconds=5), key)


class FailingPartner(ScriptedPartner):
    def write_message(self, view):
        raise RuntimeError('boom')


@pytest.fixture
def fresh_broker():
    own = DecisionBroker(max_workers=8)
    yield own
    own.shutdown()


def test_four_one_second_calls_finish_together(fault_server, fresh_broker):
    server = fault_server('slow', delay=1.0)
    partners = {f'k{i}': llm_partner(server.base_url, f'S-g1-A{i}') for i in range(4)}
    started = time.monotonic()
    for key, partner in partners.items():
        assert fresh_broker.start(key, partner, 'return', VIEW, **RETURN) is True
    assert time.monotonic() - started < 0.1  # start returns at once
    results = [fresh_broker.collect(key, partner, 'return', VIEW, deadline_seconds=5, **RETURN)
               for key, partner in partners.items()]
    elapsed = time.monotonic() - started
    assert all(not d.fallback and d.value == 15 for d in results)
    # together: ~1 s; two at a time would take 2 s, one at a time 4 s (margin for a busy machine)
    assert 1.0 <= elapsed < 2.0, elapsed


def test_deadline_gives_the_scripted_fallback(fault_server, fresh_broker):
    partner = llm_partner(fault_server('slow', delay=3).base_url, 'S-g1-A1')
    fresh_broker.start('slow-msg', partner, 'message', VIEW)
    started = time.monotonic()
    decision = fresh_broker.collect('slow-msg', partner, 'message', VIEW, deadline_seconds=0.3)
    assert time.monotonic() - started < 0.6
    assert decision.fallback and decision.fallback_reason == 'deadline'
    assert decision.value == make_partner({}, 'S-g1-A1').write_message(VIEW).value
    assert decision.latency_ms >= 300
    assert decision.prompt  # the prompt that was sent is still recorded


def test_collect_without_start_gives_not_started(fresh_broker):
    partner = make_partner({}, 'S-g1-A2')
    decision = fresh_broker.collect('never', partner, 'return', VIEW, deadline_seconds=1, **RETURN)
    assert decision.fallback and decision.fallback_reason == 'not_started'
    assert decision.value == partner.decide_return(VIEW, **RETURN).value


def test_a_raising_partner_gives_error_fallback(fresh_broker):
    partner = FailingPartner(make_partner({}, 'x').settings, 'S-g1-A3')
    fresh_broker.start('bad', partner, 'message', VIEW)
    decision = fresh_broker.collect('bad', partner, 'message', VIEW, deadline_seconds=2)
    assert decision.fallback and decision.fallback_reason == 'error:RuntimeError'
    assert isinstance(decision.value, str) and decision.value


def test_collect_removes_the_key_and_a_second_start_is_ignored(fresh_broker):
    partner = make_partner({}, 'S-g1-A1')
    assert fresh_broker.start('k', partner, 'message', VIEW) is True
    assert fresh_broker.start('k', partner, 'message', VIEW) is False
    assert fresh_broker.pending() == ['k']
    first = fresh_broker.collect('k', partner, 'message', VIEW, deadline_seconds=2)
    assert not first.fallback and first.policy == 'scripted'
    assert fresh_broker.pending() == []
    again = fresh_broker.collect('k', partner, 'message', VIEW, deadline_seconds=2)
    assert again.fallback_reason == 'not_started'


def test_unknown_decision_or_bad_amount_is_rejected_at_start(fresh_broker):
    with pytest.raises(ValueError, match='decision'):
        fresh_broker.start('k', make_partner({}, 'x'), 'gift', VIEW)
    with pytest.raises(ValueError, match='amount_received'):
        fresh_broker.start('k', make_partner({}, 'x'), 'return', VIEW, amount_sent=10, amount_received=-30)
    with pytest.raises(TypeError, match='GameView'):
        fresh_broker.start('k', make_partner({}, 'x'), 'message', dict(round_number=1))
    assert fresh_broker.pending() == []


def test_module_singleton_is_a_broker():
    partner = make_partner({}, 'S-g9-A1')
    broker.start('singleton-test', partner, 'return', VIEW, **RETURN)
    decision = broker.collect('singleton-test', partner, 'return', VIEW, deadline_seconds=2, **RETURN)
    assert decision.fallback is False and 0 <= decision.value <= 30


def test_collectable_waits_for_running_calls_until_the_deadline(fault_server, fresh_broker):
    server = fault_server('slow', delay=1.0)
    partner = llm_partner(server.base_url, 'S-g1-A1')
    requested_at = time.time()
    fresh_broker.start('slow', partner, 'return', VIEW, **RETURN)
    assert not fresh_broker.collectable(['slow'], requested_at, deadline_seconds=30)
    assert fresh_broker.collectable(['slow'], requested_at, deadline_seconds=30, now=requested_at + 31)
    time.sleep(1.5)
    assert fresh_broker.collectable(['slow'], requested_at, deadline_seconds=30)
    assert fresh_broker.seconds_left(requested_at, 30, now=requested_at + 10) == 20
    assert fresh_broker.seconds_left(requested_at, 30, now=requested_at + 40) == 0


def test_a_decision_lost_in_a_restart_is_collectable_at_once_as_not_started(fresh_broker):
    # After a server restart the new process has no job for a key the database says was requested.
    assert fresh_broker.collectable(['lost-key'], time.time(), deadline_seconds=30)
