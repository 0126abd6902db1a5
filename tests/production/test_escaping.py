"""Text written by participants or returned by an LLM reaches other people's pages escaped, never as HTML.

A whole partner_selection session is played over HTTP against prodserver + PostgreSQL: human candidates
write an HTML/JS payload, the AI candidates' LLM endpoint answers with another one. Every page any
participant receives, and the admin's data and monitor pages, must hold the payloads only as text.
"""
import json

from hosting.http_participant import PartnerSelectionPolicy, play_all
from llm_fixtures import fault_server  # noqa: F401  (pytest fixture)

from .players import client, participants_for, run

HUMAN_PAYLOAD = '<script>window.pwnedByHuman=1</script><img src=x onerror="alert(1)"> & "quotes" \'single\''
LLM_PAYLOAD = '<script>window.pwnedByLlm=1</script><b onmouseover="alert(2)">vote AI</b>'
RAW_MARKUP = ('<script>window.pwned', '<img src=x', '<b onmouseover')


class RecordingPolicy(PartnerSelectionPolicy):
    """Plays like PartnerSelectionPolicy with a fixed message and keeps the HTML of every page it fills."""

    def __init__(self, seed, pages):
        super().__init__(seed=seed, message=HUMAN_PAYLOAD)
        self.pages = pages

    def __call__(self, page):
        self.pages.append(page)
        return super().__call__(page)


def test_participant_and_llm_payloads_are_escaped_on_every_page(start_prodserver, fault_server):  # noqa: F811
    llm = fault_server('content', content=json.dumps({'message': LLM_PAYLOAD}))
    server = start_prodserver()
    session = server.create_session(
        'ps_disclosed', 5, num_rounds=2, ai_policy='llm', llm_base_url=llm.base_url, llm_api_key_env='',
        llm_model='fault-server', llm_timeout_seconds=5,
    )
    pages = []

    async def play():
        async with client() as http:
            people = participants_for(server, session, lambda i: RecordingPolicy(i, pages), client=http)
            await play_all(people)

    run(play())

    assert llm.requests, 'the AI candidates never called the LLM endpoint'
    shown = {page.name for page in pages}
    assert {'Choose', 'Feedback', 'WriteMessage', 'Payment', 'Debrief'} <= shown
    for page in pages:
        for markup in RAW_MARKUP:
            assert markup not in page.html, f'{markup!r} unescaped on {page.name} ({page.url})'
    choose_pages = [page.html for page in pages if page.name == 'Choose']
    assert all('&lt;script&gt;window.pwnedByHuman=1&lt;/script&gt;' in html for html in choose_pages)
    assert all('&lt;script&gt;window.pwnedByLlm=1&lt;/script&gt;' in html for html in choose_pages)
    assert all('&amp; &quot;quotes&quot; &#x27;single&#x27;' in html for html in choose_pages)

    admin, _ = server.admin_login()
    for page in (f"/SessionData/{session['code']}", f"/SessionMonitor/{session['code']}",
                 f"/session_data/{session['code']}"):
        html = admin.get(page).text
        for markup in RAW_MARKUP:
            assert markup not in html, f'{markup!r} unescaped on admin page {page}'
