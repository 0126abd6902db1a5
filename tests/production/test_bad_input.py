"""Bad input that once broke a page, tried on prodserver + PostgreSQL (issue 12): a message holding NUL
(PostgreSQL refuses NUL in text) and bidirectional controls, from a human and from the LLM behind the AI
candidates; a 20-digit comprehension answer on the last attempt (once let through unvalidated and an
OverflowError when saved). No HTTP 500, no traceback; messages are stored cleaned; malformed answers are
form errors that cost no attempt."""
import json

import pytest

from hosting.http_participant import PartnerSelectionPolicy, play_all
from llm_fixtures import fault_server  # noqa: F401  (pytest fixture)

from .players import client, participants_for, run

HUMAN_MESSAGE = 'I return\x00 half \u202eof it\u202c, always.\r\nPromise\x1b\u2066!'
HUMAN_STORED = 'I return half of it, always.\nPromise!'
LLM_MESSAGE = 'Pick\x00 me: \u202efair returns\u202c\u200f.'
LLM_STORED = 'Pick me: fair returns.'
TOO_BIG = '1' * 20
MAX_ATTEMPTS = 3


class BadInputPolicy(PartnerSelectionPolicy):
    """Comprehension: two wrong answers, then on the last attempt a 20-digit one, then the right answers.
    WriteMessage: HUMAN_MESSAGE. Everything else as PartnerSelectionPolicy."""

    def __init__(self, seed):
        super().__init__(seed=seed, message=HUMAN_MESSAGE)
        self.comprehension_pages = []

    def __call__(self, page):
        values = super().__call__(page)
        if page.name == 'Comprehension':
            self.comprehension_pages.append(page.html)
            attempt = len(self.comprehension_pages)
            if attempt < MAX_ATTEMPTS:
                values['comp_received'] = str(int(values['comp_received']) + 1)
            elif attempt == MAX_ATTEMPTS:
                values['comp_received'] = TOO_BIG
        return values


def test_a_nul_message_and_a_20_digit_last_answer_give_no_server_error(postgres, start_prodserver):
    """Human candidates write HUMAN_MESSAGE; the AI candidates are scripted."""
    server = start_prodserver()
    session = server.create_session('ps_disclosed', 5, num_rounds=1, comprehension_max_attempts=MAX_ATTEMPTS)
    play_and_check(postgres, server, session, ai_message=None)


def test_an_llm_message_with_nul_gives_no_server_error_and_is_stored_cleaned(postgres, start_prodserver, fault_server):  # noqa: F811
    llm = fault_server('content', content=json.dumps({'message': LLM_MESSAGE}))
    server = start_prodserver()
    session = server.create_session(
        'ps_disclosed', 5, num_rounds=1, comprehension_max_attempts=MAX_ATTEMPTS, ai_policy='llm',
        llm_base_url=llm.base_url, llm_api_key_env='', llm_model='fault-server', llm_timeout_seconds=5,
    )
    play_and_check(postgres, server, session, ai_message=LLM_STORED)
    assert llm.requests, 'the AI candidates never called the LLM endpoint'


def play_and_check(postgres, server, session, ai_message):
    """Plays the session with BadInputPolicy: no HTTP 500, no traceback, answers and messages as stored."""
    policies = []

    def policy(i):
        policies.append(BadInputPolicy(i))
        return policies[-1]

    async def play():
        async with client() as http:
            # reconnect_seconds=0: an HTTP 500 fails the participant at once instead of being retried
            people = participants_for(server, session, policy, client=http, reconnect_seconds=0)
            await play_all(people)
            return people

    try:
        people = run(play())
    except Exception as error:
        raise AssertionError(f'{error}\n--- server tracebacks ---\n' + '\n'.join(server.app_tracebacks())) from error

    assert [t for p in people for t in p.timings if t.status >= 500] == []
    assert server.app_tracebacks() == []
    for person, policy in zip(people, policies):
        # wrong, wrong, 20 digits (a form error on the field), right
        assert person.rejected.count('Comprehension') == MAX_ATTEMPTS
        assert len(policy.comprehension_pages) == MAX_ATTEMPTS + 1
        assert 'Number must be between' in policy.comprehension_pages[-1]

    codes = [p['code'] for p in session['participants']]
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            'SELECT i.comprehension_attempts, i.comprehension_failed, p.message, p.ps_role FROM '
            'partner_selection_player p JOIN otree_participant pp ON p.participant_id = pp.id '
            'JOIN intro_player i ON i.participant_id = pp.id '
            'WHERE pp.code = ANY(%s) AND p.round_number = 1', (codes,))
        players = cursor.fetchall()
        cursor.execute(
            'SELECT c.kind, c.message FROM partner_selection_candidate c JOIN partner_selection_group g '
            'ON c.group_id = g.id JOIN otree_session s ON g.session_id = s.id WHERE s.code = %s AND c.round_number = 1',
            (session['code'],))
        candidates = cursor.fetchall()
    assert len(players) == 5
    # the malformed last answer cost no attempt: nobody was routed out
    assert {(attempts, failed) for attempts, failed, _, _ in players} == {(MAX_ATTEMPTS - 1, False)}
    assert sorted(message for _, _, message, role in players if role == 'candidate') == [HUMAN_STORED] * 2
    assert sorted(message for kind, message in candidates if kind == 'human') == [HUMAN_STORED] * 2
    if ai_message is not None:
        assert [message for kind, message in candidates if kind == 'ai'] == [ai_message] * 2
