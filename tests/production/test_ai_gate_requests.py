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
