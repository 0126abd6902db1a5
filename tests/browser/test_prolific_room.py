"""A Prolific participant in Chromium: the study link with Prolific's URL parameters opens the online room's
welcome page, Start leads to the consent page, and the consent form carries STUDY_ID and SESSION_ID to the
server, where they are stored next to the Prolific ID (the participant label)."""
import csv
import io

import httpx

PROLIFIC = dict(PROLIFIC_PID='5f1e2d3c4b5a69788796a5b4', STUDY_ID='65f0e1d2c3b4a59687786950',
                SESSION_ID='6601a2b3c4d5e6f708192a3b')


def test_prolific_ids_reach_the_data_through_welcome_and_consent_pages(browser, otree_server):
    session = otree_server.create_session('ps_disclosed', 5, room_name='online', num_rounds=1)
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on('console', lambda message: errors.append(message.text) if message.type == 'error' else None)
    query = '&'.join(f'{key}={value}' for key, value in PROLIFIC.items())
    page.goto(f'{otree_server.base_url}/room/online?{query}')
    assert page.locator('#no-id').is_hidden()
    page.click('#start')
    page.wait_for_url('**/Consent/**')
    assert page.input_value('#id_prolific_study_id') == PROLIFIC['STUDY_ID']
    assert page.input_value('#id_prolific_session_id') == PROLIFIC['SESSION_ID']
    page.check('input[name=consent][value=True]')
    page.click('.otree-btn-next')
    page.wait_for_url('**/Rules/**')
    context.close()
    assert errors == []

    export = httpx.get(f'{otree_server.base_url}/api/export_wide', params=dict(session_code=session['code']),
                       headers={'otree-rest-key': otree_server.rest_key}).text
    rows = list(csv.DictReader(io.StringIO(export)))
    mine = [row for row in rows if row['participant.label'] == PROLIFIC['PROLIFIC_PID']]
    assert len(mine) == 1
    assert mine[0]['participant.prolific_study_id'] == PROLIFIC['STUDY_ID']
    assert mine[0]['participant.prolific_session_id'] == PROLIFIC['SESSION_ID']


def test_a_link_without_prolific_id_warns_the_participant(browser, otree_server):
    otree_server.create_session('ps_disclosed', 5, room_name='online', num_rounds=1)
    page = browser.new_page()
    page.goto(f'{otree_server.base_url}/room/online')
    assert page.locator('#no-id').is_visible()
    page.close()
