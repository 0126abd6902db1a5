"""Two oTree prodservers behind HAProxy (hosting/cluster.py, scripts/cluster.sh): every page and WebSocket
of a participant reaches one server, both servers are used, the room entry spreads people by their label
and keeps a returning one on the same server and seat, and the merged export holds every decision once.

Stickiness is read from HAProxy's own log: each simulated participant sends `X-Participant: <code>`,
HAProxy logs it with the server it chose, for page loads and WebSocket handshakes alike (the WebSockets
send the OTREE_SERVER cookie, as a browser's do)."""
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from analysis.io import read_exports
from hosting.cluster import ClusterParticipant, port_free, servers_by_participant, start_cluster
from hosting.http_participant import PartnerSelectionPolicy, play_all
from hosting.otree_server import free_port, is_disconnect_noise, tracebacks
from hosting.postgres import _run, postgres_bin_dir

from .players import run

PARTICIPANTS_PER_SERVER = 5  # one group: 3 selectors, 2 human candidates (ps_disclosed)
NUM_ROUNDS = 2


def free_ports_in_a_row(count: int) -> int:
    for _ in range(50):
        base = free_port()
        if base + count < 65536 and all(port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f'no {count} free ports in a row')


@pytest.fixture(scope='module')
def cluster(postgres):
    # the cluster gives each server its own database, so its role must create databases
    _run([str(postgres_bin_dir() / 'psql'), '-h', str(postgres.directory), '-p', str(postgres.port),
          '-U', 'postgres', '-d', 'postgres', '-c', 'ALTER ROLE otree CREATEDB'], 'ALTER ROLE')
    run_dir = Path(tempfile.mkdtemp(prefix='otree-cluster-', dir='/tmp'))
    base = free_ports_in_a_row(3)  # HAProxy on base, servers s1, s2 on base + 1, base + 2
    started = start_cluster(run_dir, 2, postgres.url, bind=f'127.0.0.1:{base}', base_port=base, reset=True)
    yield started
    started.stop()
    shutil.rmtree(run_dir, ignore_errors=True)


def play_through_haproxy(cluster, sessions) -> list:
    async def play():
        people = [
            ClusterParticipant(cluster.url, p['code'], PartnerSelectionPolicy(seed=i), think_seconds=0.1,
                               client=httpx.AsyncClient(follow_redirects=True, timeout=120,
                                                        headers={'X-Participant': p['code']}),
                               server_name=session['server'])
            for session in sessions for i, p in enumerate(session['participants'])]
        try:
            await play_all(people)
        finally:
            for person in people:
                await person.client.aclose()
        return people

    return run(play())


def test_participants_stick_to_their_server_and_the_merged_export_is_complete(cluster, tmp_path):
    sessions = cluster.create_sessions('ps_disclosed', PARTICIPANTS_PER_SERVER, num_rounds=NUM_ROUNDS)
    home = {p['code']: session['server'] for session in sessions for p in session['participants']}
    people = play_through_haproxy(cluster, sessions)
    assert all(person.page.is_finished for person in people)

    time.sleep(1)  # HAProxy logs a WebSocket when it closes
    log = cluster.haproxy_log.read_text()
    seen = servers_by_participant(log)
    assert set(seen) == set(home), 'every participant reached HAProxy'
    wrong = {code: servers for code, servers in seen.items() if set(servers) != {home[code]}}
    assert not wrong, f'participants whose requests went to another server: {wrong}'
    assert {server for servers in seen.values() for server in servers} == {'s1', 's2'}
    sockets = [line for line in log.splitlines() if ' 101 ' in line and '{' in line]
    assert len(sockets) >= len(home), 'wait pages and gates used WebSockets through HAProxy'
    # HAProxy's cookie status (%tsc, 3rd letter): V = the request's OTREE_SERVER cookie chose the server
    assert all(line.split()[5][2] == 'V' for line in sockets), 'WebSockets follow the cookie'
    for server in cluster.servers:  # nothing went wrong on the servers
        assert not [tb for tb in tracebacks(server.log_text()) if not is_disconnect_noise(tb)]

    exported = cluster.export(tmp_path)
    kind, decisions = read_exports(exported['partner_selection_custom_export'])
    assert kind == 'decisions'
    assert set(decisions['session_code']) == {s['code'] for s in sessions}
    chosen = Counter((d.participant, d.round_number) for p in people for d in p.decisions if d.page == 'Choose')
    assert len(chosen) == 2 * 3 * NUM_ROUNDS and max(chosen.values()) == 1
    rows = Counter(zip(decisions['selector_id'], decisions['round'].astype(int)))
    assert rows == chosen, '0 lost, 0 duplicated: one export row per decision the participants saw accepted'
    merged = read_exports([tmp_path / 'partner_selection_custom_export.csv'])[1]
    assert len(merged) == len(decisions)
    kind, candidates = read_exports(exported['partner_selection_custom_export_candidates'])
    assert kind == 'candidates' and set(candidates['session_code']) == {s['code'] for s in sessions}


def enter_room(cluster, label: str, client: httpx.Client = None) -> httpx.Response:
    """Prolific's link, then the welcome page's Start button, in a fresh browser unless `client` is given."""
    own = client or httpx.Client(follow_redirects=True, timeout=30)
    try:
        own.get(f'{cluster.url}/room/online', params=dict(PROLIFIC_PID=label, STUDY_ID='s', SESSION_ID='x'))
        return own.get(f'{cluster.url}/room/online', params=dict(participant_label=label, welcome_page_ok='1'))
    finally:
        if client is None:
            own.close()


def test_the_room_entry_spreads_people_and_keeps_a_returning_one_on_their_seat(cluster):
    sessions = cluster.create_sessions('ps_disclosed', 10, room_name='online', num_rounds=1)
    labels = [f'5f{i:02d}aa11bb22cc33dd44ee{i:02d}' for i in range(12)]
    landed = {}
    for label in labels:
        response = enter_room(cluster, label)
        assert response.status_code == 200 and '/p/' in str(response.url), response.text[:300]
        landed[label] = (response.headers['x-otree-server'], str(response.url).split('/')[4])
    assert Counter(server for server, _ in landed.values()).keys() == {'s1', 's2'}
    for label in labels[:4]:  # a second device (no cookie) and the same browser again: same server, same seat
        assert (lambda r: (r.headers['x-otree-server'], str(r.url).split('/')[4]))(enter_room(cluster, label)) \
            == landed[label]
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        first = enter_room(cluster, labels[0], browser)
        assert browser.cookies.get('OTREE_SERVER') == landed[labels[0]][0]
        assert browser.get(str(first.url)).headers['x-otree-server'] == landed[labels[0]][0]
    for session in sessions:
        seated = {p['label'] for p in cluster.rest(cluster.server(session['server']), 'GET',
                                                   f'/api/sessions/{session["code"]}').json()['participants']}
        assert {label for label, (server, _) in landed.items() if server == session['server']} <= seated


# --- analysis.io.read_exports: the merge of several servers' exports (no server needed) -------------------

DECISIONS = Path(__file__).resolve().parents[1] / 'data' / 'analysis_decisions_small.csv'


def rewritten(tmp_path, name: str, change) -> Path:
    """A copy of the decisions fixture with `change(lines)` applied (lines without newlines)."""
    lines = DECISIONS.read_text().splitlines()
    path = tmp_path / name
    path.write_text('\n'.join(change(lines)) + '\n')
    return path


@pytest.mark.unit
def test_read_exports_concatenates_servers_and_refuses_a_session_twice(tmp_path):
    from analysis.io import ExportError, read_export
    other = rewritten(tmp_path, 's2.csv', lambda lines: [lines[0]] + [
        line.replace('fx1', 'fx2') for line in lines[1:]])  # another session: codes fx2, fx2s0001, …
    header_only = rewritten(tmp_path, 's3.csv', lambda lines: lines[:1])
    kind, merged = read_exports([DECISIONS, other, header_only])
    single = read_export(DECISIONS)[1]
    assert kind == 'decisions' and len(merged) == 2 * len(single)
    assert list(merged.columns) == list(single.columns)
    with pytest.raises(ExportError, match='session fx1 is in both'):
        read_exports([DECISIONS, DECISIONS])


@pytest.mark.unit
def test_read_exports_refuses_other_kinds_and_other_columns(tmp_path):
    from analysis.io import ExportError
    with pytest.raises(ExportError, match='give files of one kind'):
        read_exports([DECISIONS, DECISIONS.with_name('analysis_trust_small.csv')])
    fewer = rewritten(tmp_path, 'old.csv', lambda lines: [line.rsplit(',', 1)[0] for line in lines])
    with pytest.raises(ExportError, match='columns differ'):
        read_exports([DECISIONS, fewer])
    with pytest.raises(ExportError, match='no export files'):
        read_exports([])
