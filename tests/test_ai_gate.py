"""The AI gate (study/ai_decisions.py AIGate) asks the server once, when it can open, instead of polling.

A participant's page on the gate is simulated in-process against the gate's own live method, on a fake
clock: it asks when `js_vars` says, and again when the server's answer says. The count of live requests
per participant and gate is what the browser would send (the browser test and the load benchmark count
them on a real server).
"""
from types import SimpleNamespace

import pytest

from study import ai_decisions

pytestmark = pytest.mark.unit

MIN_DELAY = 3.0
DEADLINE = 30.0


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ai_decisions.time, 'time', clock.time)
    config = SimpleNamespace(ai_min_return_seconds=MIN_DELAY, ai_collect_deadline_seconds=DEADLINE,
                             info_page_timeout_seconds=0)
    monkeypatch.setattr(ai_decisions, 'config_of', lambda obj: config)
    return clock


def make_gate(clock: Clock, requested_at: float, ai_done_at: float, holds_min_delay: bool):
    """A gate whose decisions are in at ai_done_at (or at the deadline, when the fallback takes over)."""

    class Gate(ai_decisions.AIGate):
        @staticmethod
        def requested_at(group):
            return requested_at

        @staticmethod
        def advance(group, force=False):
            release = requested_at + (MIN_DELAY if holds_min_delay else 0)
            in_ = min(ai_done_at, requested_at + DEADLINE)
            return force or clock.now >= max(release, in_)

    Gate.holds_min_delay = holds_min_delay
    return Gate


def visit_gate(gate, clock: Clock, player) -> int:
    """Plays AIGate.html's script until the page submits itself (clock.now is then that moment); returns
    the live requests sent."""
    clock.now += gate.js_vars(player)['gate_remaining_ms'] / 1000
    attempt = requests = 0
    while True:
        requests += 1
        answer = gate.live_method(player, {'attempt': attempt})
        reply = answer.get(0) or answer[player.id_in_group]
        if reply['advance']:
            return requests
        attempt += 1
        clock.now += reply['ask_in_ms'] / 1000
        assert requests < 20, 'the gate keeps asking'


def player_at(id_in_group: int = 1):
    return SimpleNamespace(id_in_group=id_in_group, group=SimpleNamespace())


@pytest.mark.parametrize('ai_seconds', [0.0, 0.5, 2.9])
def test_gate_asks_once_when_the_ai_is_in_before_the_min_delay_ends(clock, ai_seconds):
    requested = clock.now
    gate = make_gate(clock, requested, requested + ai_seconds, holds_min_delay=True)
    clock.now += 0.4  # the selector reaches the gate a moment after the choices
    requests = visit_gate(gate, clock, player_at())
    assert requests == 1
    assert clock.now == pytest.approx(requested + MIN_DELAY + ai_decisions.GATE_MARGIN_SECONDS)


def test_gate_asks_twice_when_the_ai_answers_within_a_second_after_the_min_delay(clock):
    requested = clock.now
    gate = make_gate(clock, requested, requested + MIN_DELAY + 0.8, holds_min_delay=True)
    requests = visit_gate(gate, clock, player_at())
    assert requests <= 2


def test_a_slow_ai_is_asked_for_at_doubling_intervals_until_the_deadline(clock):
    requested = clock.now
    gate = make_gate(clock, requested, float('inf'), holds_min_delay=True)  # in only as the deadline fallback
    requests = visit_gate(gate, clock, player_at())
    # At 3, 4, 6, 10, 14 … 26, 30 s (the deadline): nine requests, where polling sent 54.
    assert requests == 9
    assert clock.now == pytest.approx(requested + DEADLINE, abs=0.6)


def test_an_ai_a_little_late_is_asked_for_a_few_times_and_nobody_waits_long_after_it_is_in(clock):
    requested = clock.now
    # seconds late after the min delay -> requests (asked at 3 s, then 4, 6, 10, 14, 18, 22 …)
    for late, expected in {0.5: 2, 2.5: 3, 6.0: 4, 17.0: 7}.items():
        clock.now = requested
        gate = make_gate(clock, requested, requested + MIN_DELAY + late, holds_min_delay=True)
        assert visit_gate(gate, clock, player_at()) == expected
        assert clock.now - (requested + MIN_DELAY + late) <= ai_decisions.GATE_MAX_RETRY_SECONDS + 0.2


def test_messages_gate_without_min_delay_asks_a_second_after_it_is_shown(clock):
    requested = clock.now - 20  # humans wrote for 20 s; an LLM message is still on its way
    gate = make_gate(clock, requested, clock.now + 0.7, holds_min_delay=False)
    # The page is shown because the messages were not in a moment ago: asking at once would be wasted.
    assert gate.js_vars(player_at())['gate_remaining_ms'] == pytest.approx(1050, abs=1)
    assert visit_gate(gate, clock, player_at()) == 1


def test_gate_release_is_the_same_whoever_was_chosen(clock):
    """hidden / false_label: the gate's timing depends on the clock and the AI's readiness only, so a
    round whose selectors chose only humans (the AI 'instantly ready') opens at the same moment as one
    with a scripted AI partner."""
    requested = clock.now
    times = []
    for ai_done in (requested, requested + 0.01):
        clock.now = requested + 0.3
        gate = make_gate(clock, requested, ai_done, holds_min_delay=True)
        visit_gate(gate, clock, player_at())
        times.append(clock.now)
    assert times[0] == times[1]


def test_advance_is_sent_to_everyone_of_the_group_on_the_gate(clock):
    gate = make_gate(clock, clock.now - MIN_DELAY - 1, clock.now - 1, holds_min_delay=True)
    assert gate.live_method(player_at(2), {}) == {0: {'advance': True}}


def test_not_ready_answers_only_the_asker_and_ignores_a_bad_attempt_count(clock):
    gate = make_gate(clock, clock.now, float('inf'), holds_min_delay=True)
    answer = gate.live_method(player_at(3), {'attempt': 'x'})
    assert list(answer) == [3]
    assert answer[3]['advance'] is False
    assert answer[3]['ask_in_ms'] == pytest.approx(1000 * MIN_DELAY + 50, abs=1)
    assert gate.live_method(player_at(3), None)[3]['advance'] is False


def test_while_a_person_has_not_decided_the_others_ask_seldom_and_that_persons_request_opens_the_gate(clock):
    """A chosen human candidate thinks 15 s: the selectors on the returns gate ask at the release, then only
    every GATE_PEOPLE_RETRY_SECONDS (before: at 1, 2, 4, 4 … s, about four requests per visit); the
    candidate, arriving after deciding, asks at once and its answer (advance, to key 0) releases them all."""
    requested = clock.now
    decided_at = requested + 15.0
    gate = make_gate(clock, requested, requested, holds_min_delay=True)
    gate.awaits_people = staticmethod(lambda group: clock.now < decided_at)
    gate.advance = staticmethod(lambda group, force=False: force or clock.now >= max(requested + MIN_DELAY,
                                                                                      decided_at))
    selector = player_at(1)
    clock.now += gate.js_vars(selector)['gate_remaining_ms'] / 1000
    answer = gate.live_method(selector, {'attempt': 0})[1]
    assert answer['advance'] is False
    assert answer['ask_in_ms'] == pytest.approx(1000 * ai_decisions.GATE_PEOPLE_RETRY_SECONDS + 50, abs=1)
    clock.now = decided_at + 0.2  # the candidate's request from the gate, right after its Return page
    assert gate.js_vars(player_at(4))['gate_remaining_ms'] == 0
    assert gate.live_method(player_at(4), {'attempt': 0}) == {0: {'advance': True}}
    # a person who never comes (a closed browser): the others still ask, seldom, until the deadline
    gate.awaits_people = staticmethod(lambda group: True)
    gate.advance = staticmethod(lambda group, force=False: force or clock.now >= requested + DEADLINE)
    clock.now = requested
    assert visit_gate(gate, clock, selector) <= 1 + DEADLINE / ai_decisions.GATE_PEOPLE_RETRY_SECONDS + 1
    assert clock.now == pytest.approx(requested + DEADLINE, abs=0.2)
