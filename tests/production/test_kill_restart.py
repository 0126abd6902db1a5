"""Killing the production server (SIGKILL to its process group) in the middle of a partner_selection session
and restarting it loses and duplicates nothing: every decision participants saw accepted is in PostgreSQL
exactly once, and the session runs to its end."""
import asyncio
from collections import Counter

from hosting.http_participant import play_all

from .players import client, participants_for, run

NUM_ROUNDS = 3
KILL_AFTER_DECISIONS = 9  # round 1 done (3 choices, 2 messages, returns) and round 2 under way


def stored_decisions(postgres, session_code: str) -> dict:
    """(participant code, round, page) -> values, read from the tables oTree wrote."""
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            '''SELECT pp.code, p.round_number, p.ps_role, p.choice, p.choice_timed_out, p.message,
                      p.message_timed_out, p.return_slots, p.candidate_return_timed_out,
                      p.return_1, p.return_2, p.return_3
               FROM partner_selection_player p
               JOIN otree_participant pp ON pp.id = p.participant_id
               JOIN otree_session s ON s.id = p.session_id
               WHERE s.code = %s AND p.round_number <= %s''',
            (session_code, NUM_ROUNDS),
        )
        stored = {}
        for (code, round_number, role, choice, choice_timed_out, message, message_timed_out, slots,
             return_timed_out, *returns) in cursor.fetchall():
            assert not (choice_timed_out or message_timed_out or return_timed_out), f'{code} timed out'
            if role == 'selector' and choice:
                stored[(code, round_number, 'Choose')] = {'choice': choice}
            if role == 'candidate' and message:
                stored[(code, round_number, 'WriteMessage')] = {'message': message}
            if role == 'candidate' and slots:
                filled = {f'return_{i}': str(v) for i, v in enumerate(returns, start=1) if v is not None}
                stored[(code, round_number, 'Return')] = filled
    return stored


def ai_call_counts(postgres, session_code: str):
    """Per AI candidate and round: message calls, return calls, and how often it was chosen."""
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            '''SELECT c.group_id, c.round_number, c.candidate_id, c.times_chosen,
                      (SELECT count(*) FROM partner_selection_aicall a WHERE a.group_id = c.group_id
                         AND a.round_number = c.round_number AND a.candidate_id = c.candidate_id
                         AND a.decision = 'message'),
                      (SELECT count(*) FROM partner_selection_aicall a WHERE a.group_id = c.group_id
                         AND a.round_number = c.round_number AND a.candidate_id = c.candidate_id
                         AND a.decision = 'return')
               FROM partner_selection_candidate c
               JOIN partner_selection_group g ON g.id = c.group_id
               JOIN otree_session s ON s.id = g.session_id
               WHERE s.code = %s AND c.kind = 'ai' ''',
            (session_code,),
        )
        return cursor.fetchall()


def candidate_rows_per_round(postgres, session_code: str) -> Counter:
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            '''SELECT c.round_number, c.candidate_id FROM partner_selection_candidate c
               JOIN partner_selection_group g ON g.id = c.group_id
               JOIN otree_session s ON s.id = g.session_id WHERE s.code = %s''',
            (session_code,),
        )
        return Counter(cursor.fetchall())


def test_kill_and_restart_mid_session_loses_and_duplicates_nothing(postgres, start_prodserver):
    server = start_prodserver()
    session = server.create_session('ps_disclosed', 5, num_rounds=NUM_ROUNDS)
    killed = {}

    async def play():
        async with client() as http:
            people = participants_for(server, session, client=http, think_seconds=0.3, reconnect_seconds=120)

            async def kill_and_restart():
                while sum(len(p.decisions) for p in people) < KILL_AFTER_DECISIONS:
                    await asyncio.sleep(0.05)
                killed['decisions_before'] = sum(len(p.decisions) for p in people)
                await asyncio.to_thread(server.kill)
                await asyncio.sleep(2)  # participants keep trying meanwhile: connection refused
                await asyncio.to_thread(server.restart)

            chaos = asyncio.create_task(kill_and_restart())
            await play_all(people)
            await chaos
            return people

    people = run(play())

    assert killed['decisions_before'] >= KILL_AFTER_DECISIONS
    assert '--- restarted ---' in server.log_text()
    assert all(person.page.is_finished for person in people)
    submitted = Counter((d.participant, d.round_number, d.page) for p in people for d in p.decisions)
    assert max(submitted.values()) == 1, 'a participant had one decision accepted twice'
    stored = stored_decisions(postgres, session['code'])
    accepted = {(d.participant, d.round_number, d.page): d.values for p in people for d in p.decisions}
    assert stored == accepted
    # 3 selectors × 3 rounds choose; 2 human candidates × 3 rounds write; plus the returns.
    assert sum(1 for key in stored if key[2] == 'Choose') == 3 * NUM_ROUNDS
    assert sum(1 for key in stored if key[2] == 'WriteMessage') == 2 * NUM_ROUNDS
    # One row per candidate per round, one message call per AI candidate, one return call per selector.
    rows = candidate_rows_per_round(postgres, session['code'])
    assert set(rows.values()) == {1} and len(rows) == 4 * NUM_ROUNDS
    for group, round_number, candidate, times_chosen, message_calls, return_calls in ai_call_counts(
            postgres, session['code']):
        assert message_calls == 1, (round_number, candidate)
        assert return_calls == times_chosen, (round_number, candidate)
