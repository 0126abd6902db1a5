"""Under prodserver the server itself submits a page whose participant went away once its timeout passes,
flags the decision as timed out (never a silent choice), and the others go on without that participant."""
import asyncio
import time

from hosting.http_participant import play_all

from .players import client, participants_for, run

PAGE_TIMEOUT = 4
# oTree's timeout worker submits an abandoned page some seconds after its deadline (seen ~8 s).
SERVER_SUBMIT_GRACE = 60


def selector_rows(postgres, session_code):
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            '''SELECT pp.code, p.choice, p.choice_timed_out, p.chosen_candidate_id, p.amount_sent
               FROM partner_selection_player p JOIN otree_participant pp ON pp.id = p.participant_id
               JOIN otree_session s ON s.id = p.session_id
               WHERE s.code = %s AND p.round_number = 1 AND p.ps_role = 'selector' ''',
            (session_code,),
        )
        return {code: rest for code, *rest in cursor.fetchall()}


def test_an_abandoned_choice_page_times_out_server_side_and_is_flagged(postgres, start_prodserver):
    server = start_prodserver()
    session = server.create_session('ps_disclosed', 5, num_rounds=1, page_timeout_seconds=PAGE_TIMEOUT,
                                    info_page_timeout_seconds=600)

    async def play():
        async with client() as http:
            people = participants_for(server, session, client=http, stall_seconds=SERVER_SUBMIT_GRACE + 60)
            # Participant 1 (a selector: roles go selectors first) leaves on the choice page.
            abandoner = people[0]
            abandoner.stop_before = lambda page: page.name == 'Choose'
            left_at = {}

            async def abandon():
                await abandoner.run()  # plays up to the choice page, has it loaded, and leaves
                left_at['time'] = time.monotonic()

            others = people[1:]
            await asyncio.gather(abandon(), play_all(others))
            return abandoner, others, time.monotonic() - left_at['time']

    abandoner, others, waited = run(play())
    rows = selector_rows(postgres, session['code'])
    assert abandoner.page.name == 'Choose' and abandoner.code in rows, 'the first participant must be a selector'
    choice, timed_out, chosen, amount_sent = rows[abandoner.code]
    assert timed_out is True
    assert (choice, chosen, amount_sent) == ('', '', 0)
    assert all(person.page.is_finished for person in others)
    assert waited >= PAGE_TIMEOUT
    for code, (choice, timed_out, chosen, _) in rows.items():
        if code != abandoner.code:
            assert not timed_out and choice and chosen
