"""The AI gates do not poll (issue 14): under prodserver, a participant on a gate sends at most two live
requests per visit (one, at the end of ai_min_return_seconds, in the normal case) and posts the gate once.

The participants do what the gate's script does (hosting/http_participant.py, study/AIGate.html) and
do not pause, so that the round's returns are in before the minimum delay ends and the gates are shown.
"""
import pytest

from hosting.http_participant import TrustGamePolicy, play_all

from .players import client, participants_for, run

MAX_LIVE_REQUESTS_PER_GATE = 2


@pytest.mark.parametrize('config_name, participants, policy', [
    ('ps_hidden', 5, None),
    ('trust_ai_hidden', 4, lambda i: TrustGamePolicy(seed=i)),
])
def test_ai_gates_ask_the_server_at_most_twice_per_visit(start_prodserver, config_name, participants, policy):
    server = start_prodserver()
    session = server.create_session(config_name, participants, num_rounds=2)

    async def play():
        async with client() as http:
            people = participants_for(server, session, policy, client=http)
            await play_all(people)
            return people

    people = run(play())
    assert all(person.page.is_finished for person in people)
    visits = {(person.code, url): n for person in people for url, n in person.gate_requests.items()}
    assert visits, 'no participant saw an AI gate: the test proves nothing'
    assert max(visits.values()) <= MAX_LIVE_REQUESTS_PER_GATE, visits
    gate_posts = sum(1 for person in people for t in person.timings if t.kind == 'gate_retry')
    assert gate_posts == len(visits), 'a gate was posted more than once (refused: asked too early)'
    assert not server.app_tracebacks()


def trustor_journey(person) -> tuple:
    """(pages the trustor stopped on or passed, in order; seconds from each Send to the next Results).
    A timing names the page its request landed on: the Send's submit lands on the gate, the gate's post
    on Results."""
    pages, waits, sent_at = [], [], None
    for timing in person.timings:
        for name in timing.passed + (timing.page,):
            if not name.startswith('/') and (not pages or pages[-1] != name):  # not oTree's end-of-study page
                pages.append(name)
        if timing.page == 'ReturnGate' and timing.kind == 'submit':
            sent_at = timing.started_at
        if sent_at is not None and timing.page == 'Results':
            waits.append(timing.started_at - sent_at)
            sent_at = None
    return pages, waits


def test_a_trustor_passes_the_same_pages_and_waits_as_long_with_a_human_or_an_ai_trustee(start_prodserver):
    """Hidden identity, with trustees who decide at once: a trustor's pages (the ReturnGate every round, no
    wait page that only a human trustee holds) and its least wait between Send and Results
    (ai_min_return_seconds) are the same whatever the trustee is."""
    server = start_prodserver()
    journeys = {}
    for partner in ('ai', 'human'):
        session = server.create_session('trust_ai_hidden', 2, num_rounds=2, partner=partner)

        async def play():
            async with client() as http:
                people = participants_for(server, session, lambda i: TrustGamePolicy(seed=i), client=http)
                await play_all(people)
                return people

        people = run(play())
        assert all(person.page.is_finished for person in people)
        journeys[partner] = [trustor_journey(p) for p in people if any(t.page == 'Send' for t in p.timings)]
    min_delay = 3.0  # ai_min_return_seconds' default
    ai_pages = {tuple(pages) for pages, _ in journeys['ai']}
    assert len(journeys['ai']) == 2 and len(journeys['human']) == 1
    assert ai_pages == {tuple(pages) for pages, _ in journeys["human"]}, journeys
    assert [name for name in next(iter(ai_pages)) if name == 'ReturnGate'] == ['ReturnGate'] * 2
    for partner, found in journeys.items():
        for _, waits in found:
            assert len(waits) == 2 and all(min_delay <= w < min_delay + 3 for w in waits), (partner, waits)
    assert not server.app_tracebacks()
