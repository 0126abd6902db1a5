"""Online recruitment through the `online` room on prodserver + PostgreSQL: the Prolific ID becomes the
participant label, a returning participant gets the same seat, STUDY_ID/SESSION_ID sent with the consent
form are stored (cleaned), and the payment page sends people back to the study's completion URL.
(The browser half — the welcome page keeping the ids for the consent page — is tests/browser/test_prolific_room.py.)"""
import re

import httpx
import pytest

COMPLETION_URL = 'https://app.prolific.com/submissions/complete?cc=C0DE123'


@pytest.fixture(scope='module')
def online_session(prodserver):
    return prodserver.create_session('ps_disclosed', 5, room_name='online', num_rounds=1,
                                     prolific_completion_url=COMPLETION_URL)


def enter_room(server, prolific_pid: str) -> httpx.Response:
    """What the welcome page's Start button requests (a fresh browser: no cookies)."""
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        return client.get(f'{server.base_url}/room/online',
                          params=dict(participant_label=prolific_pid, welcome_page_ok='1'))


def participant_code(response: httpx.Response) -> str:
    match = re.search(r'/p/([a-z0-9]+)/(intro|partner_selection)/', str(response.url))
    assert match, f'not on a participant page: {response.url}'
    return match.group(1)


def test_the_welcome_page_takes_prolific_url_parameters(prodserver, online_session):
    page = httpx.get(f'{prodserver.base_url}/room/online',
                     params=dict(PROLIFIC_PID='5f00aa', STUDY_ID='s1', SESSION_ID='x1'))
    assert page.status_code == 200
    assert "params.get('PROLIFIC_PID')" in page.text and "sessionStorage.setItem('prolific_ids'" in page.text


def test_prolific_id_becomes_the_label_and_a_returning_participant_gets_the_same_seat(prodserver, online_session):
    first = enter_room(prodserver, '5f00aa11bb22cc33dd44ee55')
    again = enter_room(prodserver, '5f00aa11bb22cc33dd44ee55')
    other = enter_room(prodserver, '60ff0011223344556677aabb')
    assert participant_code(first) == participant_code(again)
    assert participant_code(other) != participant_code(first)
    labels = {p['code']: p['label'] for p in prodserver.session_data(online_session['code'])['participants']}
    assert labels[participant_code(first)] == '5f00aa11bb22cc33dd44ee55'
    assert labels[participant_code(other)] == '60ff0011223344556677aabb'


def test_study_and_session_ids_sent_with_consent_are_stored_cleaned(prodserver, postgres, online_session):
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        consent = client.get(f'{prodserver.base_url}/room/online',
                             params=dict(participant_label='6a1b2c3d4e5f', welcome_page_ok='1'))
        assert '/Consent/' in str(consent.url)
        assert 'name="prolific_study_id"' in consent.text and 'name="prolific_session_id"' in consent.text
        after = client.post(str(consent.url), data=dict(
            consent='True', prolific_study_id='65aa00bb11cc', prolific_session_id='abc<script>x</script>9'))
        assert '/Consent/' not in str(after.url)
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            '''SELECT p.prolific_study_id, p.prolific_session_id FROM intro_player p
               JOIN otree_participant pp ON pp.id = p.participant_id WHERE pp.label = %s AND p.round_number = 1''',
            ('6a1b2c3d4e5f',))
        assert cursor.fetchall() == [('65aa00bb11cc', 'abcscriptxscript9')]
    export = httpx.get(f'{prodserver.base_url}/api/export_wide', params=dict(session_code=online_session['code']),
                       headers={'otree-rest-key': prodserver.rest_key}).text
    assert 'participant.prolific_study_id' in export.splitlines()[0]
    assert '65aa00bb11cc' in export


def test_more_visitors_than_seats_are_told_the_session_is_full(prodserver, online_session):
    for i in range(5):
        enter_room(prodserver, f'filler{i}')
    late = enter_room(prodserver, 'late-comer')
    assert late.status_code == 404 and late.text == 'Session is full.'


def test_the_payment_page_sends_participants_back_to_the_completion_url(prodserver):
    import asyncio

    from .players import client, participants_for, run

    session = prodserver.create_session('ps_disclosed', 5, num_rounds=1, prolific_completion_url=COMPLETION_URL)

    async def play_to_payment():
        async with client() as http:
            people = participants_for(prodserver, session, client=http)
            for person in people:
                person.stop_before = lambda page: page.name == 'Payment'
            await asyncio.gather(*(person.run() for person in people))
            return people

    for person in run(play_to_payment()):
        assert person.page.name == 'Payment'
        assert f'id="completion-link" href="{COMPLETION_URL}"' in person.page.html
        assert 'window.location.href = link.href' in person.page.html
