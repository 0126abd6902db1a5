"""Load benchmark: simulated participants over real HTTP against `otree prodserver` on PostgreSQL.

For each participant count and app, a fresh schema (`otree resetdb`) on a private PostgreSQL, a fresh
prodserver, one session of that many participants, and everyone playing at once like a browser does
(form POSTs, wait-page WebSockets, AI-gate live requests; hosting/http_participant.py), pausing
`--think-seconds` (±50 %) on each page before submitting. Then it prints one Markdown table: page
submissions, throughput, page latency percentiles, errors, page timeouts, and the decisions participants
saw accepted against the decisions PostgreSQL holds (compared per participant, round and page, values
included), the requests per participant and played round (page loads, and all requests: redirects
followed and AI-gate live requests included), the AI gates' visits, form posts and live requests (the
most at one visit), and the partner_selection / trust_game ratios (trust_game with human partners is oTree's
sample trust flow: Send, wait, Return, Results).

    python3 benchmarks/load_study.py                                  # 50, 200, 500; both apps; 3 rounds
    python3 benchmarks/load_study.py --participants 10 --rounds 1     # smoke check (about a minute)
    python3 benchmarks/load_study.py --participants 50 --apps partner_selection --max-rounds 20
                                      # the cost of unplayed rounds (OTREE_MAX_ROUNDS left at its default)

Exit code 1 if a decision is lost, duplicated or stored with another value, or a participant failed or
did not finish. Progress goes to stderr, the table to stdout.
"""
import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import random
import re
import shutil
import ssl
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hosting.http_participant import (  # noqa: E402
    HttpParticipant, PartnerSelectionPolicy, TrustGamePolicy, percentile,
)
from hosting.otree_server import start_server  # noqa: E402
from hosting.postgres import start_postgres  # noqa: E402

# Page loads a person waits for; AI-gate posts and live requests (waiting for an AI on purpose) are counted apart.
LATENCY_KINDS = ('start', 'submit', 'wait_reload')
# Form fields that carry a decision (other posted fields, e.g. hidden inputs, are not compared).
DECISION_FIELD = re.compile(r'^(message|choice|amount|belief_\d+|return_\d+|sent_amount|sent_back_amount)$')
REQUEST_TIMEOUT_SECONDS = 600  # a slow page is measured, never abandoned and re-posted
STALL_SECONDS = 900
# A browser reloads a wait page only when its WebSocket says so; the participant's safety-net reload
# (for a lost message) is pushed out so that it adds no load a browser would not.
WAIT_RELOAD_SECONDS = 60


# --- what PostgreSQL holds ---------------------------------------------------------------------------

def stored_partner_selection(cursor, rounds: int):
    """((code, round, page) -> values, page timeouts) from partner_selection_player."""
    returns = ', '.join(f'p.return_{i}' for i in range(1, 13))
    beliefs = ', '.join(f'p.belief_{i}' for i in range(1, 13))
    cursor.execute(
        f'''SELECT pp.code, p.round_number, p.ps_role, p.message, p.message_timed_out, p.choice,
                   p.choice_timed_out, p.amount, p.return_slots, p.candidate_return_timed_out,
                   FALSE, p.feedback_timed_out, {returns}, {beliefs}
            FROM partner_selection_player p JOIN otree_participant pp ON pp.id = p.participant_id
            WHERE p.round_number <= %s''', (rounds,))
    stored, timeouts = {}, 0
    for row in cursor.fetchall():
        (code, rnd, role, message, message_to, choice, choice_to, amount, slots, return_to,
         consent_to, feedback_to) = row[:12]
        returns_, beliefs_ = row[12:24], row[24:36]
        timeouts += sum(bool(flag) for flag in (message_to, choice_to, return_to, consent_to, feedback_to))
        if role == 'candidate' and message and not message_to:
            stored[(code, rnd, 'WriteMessage')] = {'message': message}
        if role == 'selector' and choice and not choice_to:
            values = {'choice': choice, 'amount': amount}
            values.update({f'belief_{i}': b for i, b in enumerate(beliefs_, start=1) if b})
            stored[(code, rnd, 'Choose')] = values
        if role == 'candidate' and slots and not return_to:
            stored[(code, rnd, 'Return')] = {f'return_{i}': v for i, v in enumerate(returns_, start=1)
                                             if v is not None}
    return stored, timeouts


def stored_trust_game(cursor, rounds: int):
    """((code, round, page) -> values, page timeouts) from trust_game_group via each player's group."""
    cursor.execute(
        '''SELECT pp.code, p.round_number, p.id_in_group, g.sent_amount, g.send_timed_out,
                  g.sent_back_amount, g.return_timed_out
           FROM trust_game_player p JOIN otree_participant pp ON pp.id = p.participant_id
           JOIN trust_game_group g ON g.id = p.group_id
           WHERE p.round_number <= %s''', (rounds,))
    stored, timeouts = {}, 0
    for code, rnd, id_in_group, sent, send_to, sent_back, return_to in cursor.fetchall():
        if id_in_group == 1:  # trustor
            timeouts += bool(send_to)
            if sent is not None and not send_to:
                stored[(code, rnd, 'Send')] = {'sent_amount': sent}
        else:  # trustee: the Return page is shown only when something was received
            timeouts += bool(return_to)
            if sent and sent_back is not None and not return_to:
                stored[(code, rnd, 'Return')] = {'sent_back_amount': sent_back}
    return stored, timeouts


@dataclass
class App:
    config: str
    group_size: int
    policy: type
    stored: callable


APPS = {
    'partner_selection': App('ps_disclosed', 5, PartnerSelectionPolicy, stored_partner_selection),
    'trust_game': App('trust_human', 2, TrustGamePolicy, stored_trust_game),
}


def compare(people, stored: dict) -> Counter:
    """Submitted (accepted) decisions against stored ones: counts of sent, stored, lost, extra, differing,
    duplicated. Values are compared field by field as text (messages without surrounding white space)."""
    sent = Counter((d.participant, d.round_number, d.page) for p in people for d in p.decisions)
    result = Counter(sent=sum(sent.values()), stored=len(stored),
                     duplicated=sum(n - 1 for n in sent.values()),
                     lost=len(set(sent) - set(stored)), extra=len(set(stored) - set(sent)))
    for decision in (d for p in people for d in p.decisions):
        held = stored.get((decision.participant, decision.round_number, decision.page))
        if held is None:
            continue
        for name, value in decision.values.items():
            if DECISION_FIELD.match(name) and str(held.get(name, '')).strip() != str(value).strip():
                result['differing'] += 1
                break
    return result


# --- one run -----------------------------------------------------------------------------------------

def process_group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group (the server and its worker)."""
    ticks = 0
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime(11), stime(12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


@dataclass
class Run:
    app: str
    participants: int
    duration: float = 0.0
    people: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    unfinished: int = 0
    timeouts: int = 0
    decisions: Counter = field(default_factory=Counter)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    rounds: int = 0
    sql_statements: int = 0  # statements the server ran while people played (--sql-stats), 0 = not counted
    worker_loads: int = 0  # pages oTree's timeout worker loaded or submitted for participants (server log)

    def timings(self, kinds=LATENCY_KINDS):
        return [t for p in self.people for t in p.timings if t.kind in kinds]

    def per_participant_round(self, count: int) -> float:
        return count / (self.participants * self.rounds) if self.participants and self.rounds else 0.0

    @property
    def page_loads(self) -> int:
        """HTTP page loads: start, submissions, wait-page reloads, AI-gate form posts."""
        return sum(1 for p in self.people for t in p.timings if t.kind != 'gate_live')

    @property
    def requests(self) -> int:
        """Every request the server answered: page loads, the redirects they followed, gate live requests."""
        return sum(1 + t.redirects for p in self.people for t in p.timings)

    @property
    def gate_visits(self) -> int:
        return sum(len(p.gate_requests) for p in self.people)

    @property
    def gate_live(self) -> int:
        return sum(sum(p.gate_requests.values()) for p in self.people)

    @property
    def gate_live_most(self) -> int:
        """The most live requests one participant sent on one gate visit."""
        return max((n for p in self.people for n in p.gate_requests.values()), default=0)

    @property
    def submissions(self) -> int:
        return len(self.timings(('submit',)))

    @property
    def throughput(self) -> float:
        return self.submissions / self.duration if self.duration else 0.0

    @property
    def cpu_ms_per_submission(self) -> float:
        """Server CPU per page submission: what a submission costs the server, whatever else it loads."""
        return 1000 * self.server_cpu / self.submissions if self.submissions else 0.0

    def latency_ms(self, q: float) -> float:
        return 1000 * percentile([t.seconds for t in self.timings()], q)

    @property
    def http_5xx(self) -> int:
        return sum(1 for p in self.people for t in p.timings if t.status >= 500)

    @property
    def ok(self) -> bool:
        d = self.decisions
        return not (self.failures or self.unfinished or d['lost'] or d['extra'] or d['differing']
                    or d['duplicated'] or d['sent'] != d['stored'])


def log(message: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


async def play(server, session: dict, app: App, args, run: Run) -> None:
    # One client (one connection) per participant, as each browser has its own: a single shared pool of
    # hundreds of connections costs the client O(connections) CPU per request (httpcore's pool scan).
    tls = ssl.create_default_context()  # built once: httpx would load the CA file for every client
    async with contextlib.AsyncExitStack() as clients:
        people = []
        for i, participant in enumerate(session['participants']):
            client = await clients.enter_async_context(httpx.AsyncClient(
                follow_redirects=True, timeout=REQUEST_TIMEOUT_SECONDS, verify=tls))
            rng = random.Random(args.seed * 1_000_003 + i)
            people.append(HttpParticipant(
                server.base_url, participant['code'], app.policy(seed=args.seed * 1_000_003 + i), client,
                think_seconds=lambda rng=rng: args.think_seconds * rng.uniform(0.5, 1.5),
                stall_seconds=STALL_SECONDS, wait_reload_seconds=WAIT_RELOAD_SECONDS))
        run.people = people
        arrivals = random.Random(args.seed)

        async def arrive_and_play(person: HttpParticipant):
            await asyncio.sleep(arrivals.uniform(0, args.ramp_seconds))
            await person.run()

        async def report_progress():
            while True:
                await asyncio.sleep(15)
                done = sum(1 for p in people if p.page is not None and p.page.is_finished)
                recent = [t.seconds for t in run.timings() if t.started_at + t.seconds > time.monotonic() - 15]
                log(f'  {run.app} {run.participants}: {done}/{len(people)} finished, '
                    f'{run.submissions} submissions, p95 of loads done in the last 15 s '
                    f'{1000 * percentile(recent, 95):.0f} ms')

        progress = asyncio.create_task(report_progress())
        started = time.monotonic()
        outcomes = await asyncio.gather(*(arrive_and_play(p) for p in people), return_exceptions=True)
        run.duration = time.monotonic() - started
        progress.cancel()
    run.failures = [repr(o)[:300] for o in outcomes if isinstance(o, BaseException)]
    run.unfinished = sum(1 for p in people if p.page is None or not p.page.is_finished)


def slowest_pages(run: Run, count: int = 4) -> str:
    by_page = {}
    for t in run.timings():
        page = t.page.split('/')[1] if t.page.startswith('/') else t.page  # '/OutOfRange…/<code>'
        by_page.setdefault(f'{page} {t.kind}', []).append(t.seconds)
    p95 = sorted(((1000 * percentile(v, 95), k) for k, v in by_page.items()), reverse=True)[:count]
    return ', '.join(f'{k} {ms:.0f}' for ms, k in p95)


def sql_statements(postgres, reset: bool = False):
    """pg_stat_statements of oTree's database (--sql-stats): reset it, or (total calls, the 12 most called
    statements as text)."""
    with postgres.connect_as_superuser() as connection, connection.cursor() as cursor:
        cursor.execute('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
        if reset:
            cursor.execute('SELECT pg_stat_statements_reset()')
            return None
        cursor.execute('''SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements
                          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                          ORDER BY calls DESC''')
        rows = cursor.fetchall()
    top = '\n'.join(f'    {calls:>7}  {_short_statement(query)}' for calls, query in rows[:16])
    return sum(calls for calls, _ in rows), top


def worker_loads(server, log_start: int) -> int:
    """Pages oTree's timeout worker loaded or submitted for participants since `log_start` (a length of the
    server's log): 10 s after a wait page completed it GETs the page of everyone at most one page past it
    (ensure_pages_visited), and it POSTs timed-out pages; both log this line."""
    return server.log_text()[log_start:].count('Auto-submitting timed out page')


def _short_statement(query: str) -> str:
    """A statement as the log shows it: its table and its WHERE clause (which tell apart the SELECTs of one
    table), not its column list."""
    if query.startswith('SELECT') and ' FROM ' in query:
        return 'SELECT … FROM ' + query.split(' FROM ', 1)[1][:140]
    return query[:150]


@contextlib.contextmanager
def profiled(pid: int, directory, name: str):
    """py-spy samples the server (and its children) while the block runs: DIR/NAME.txt, collapsed stacks
    ('frame;frame;... count' per line, for flamegraph tools), and DIR/NAME-top.txt, the functions with the
    most samples, own and inclusive. Nothing without a directory."""
    if not directory:
        yield
        return
    import subprocess
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spy = shutil.which('py-spy')
    if spy is None:
        raise SystemExit('--profile needs py-spy (pip install py-spy)')
    out = directory / f'{name}.txt'
    sampler = subprocess.Popen([spy, 'record', '--pid', str(pid), '--subprocesses', '--rate', '200', '--format',
                                'raw', '--nonblocking', '--output', str(out)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        yield
    finally:
        sampler.send_signal(2)  # SIGINT: py-spy writes its file and exits
        sampler.wait(timeout=60)
        if out.exists():
            (directory / f'{name}-top.txt').write_text(top_functions(out.read_text()))
            log(f'  profile: {out} (collapsed stacks), {directory / f"{name}-top.txt"}')


def top_functions(collapsed: str, count: int = 40) -> str:
    """The functions with the most samples in py-spy's collapsed stacks: own (leaf) and inclusive shares."""
    own, inclusive, total = Counter(), Counter(), 0
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(' ')
        if not stack or not n.isdigit():
            continue
        frames = stack.split(';')[1:]  # the first frame is the process
        total += int(n)
        if frames:
            own[frames[-1]] += int(n)
        for frame in set(frames):
            inclusive[frame] += int(n)
    lines = [f'{total} samples', '', 'own %  function']
    lines += [f'{100 * n / total:5.1f}  {f}' for f, n in own.most_common(count)]
    lines += ['', 'inclusive %  function']
    lines += [f'{100 * n / total:5.1f}  {f}' for f, n in inclusive.most_common(count)]
    return '\n'.join(lines) + '\n'


def run_one(postgres, base: Path, app_name: str, participants: int, args) -> Run:
    app = APPS[app_name]
    run = Run(app_name, participants, rounds=args.rounds)
    log(f'{app_name} {participants}: resetdb + prodserver (OTREE_MAX_ROUNDS={args.max_rounds})')
    server = start_server(base / f'{app_name}-{participants}', database_url=postgres.url,
                          extra_env={'OTREE_MAX_ROUNDS': str(args.max_rounds)})
    try:
        session = server.create_session(app.config, participants, num_rounds=args.rounds)
        if args.sql_stats:
            sql_statements(postgres, reset=True)
        log_start = len(server.log_text())
        server_cpu, client_cpu = process_group_cpu_seconds(server.process.pid), time.process_time()
        with profiled(server.process.pid, args.profile, f'{app_name}-{participants}'):
            asyncio.run(play(server, session, app, args, run))
        run.server_cpu = process_group_cpu_seconds(server.process.pid) - server_cpu
        run.worker_loads = worker_loads(server, log_start)
        if args.sql_stats:
            run.sql_statements, top = sql_statements(postgres)
            log(f'  SQL statements run while people played: {run.sql_statements} '
                f'({run.sql_statements / max(run.submissions, 1):.1f} per submission); most called:\n{top}')
        run.client_cpu = time.process_time() - client_cpu
        with postgres.connect() as connection, connection.cursor() as cursor:
            stored, run.timeouts = app.stored(cursor, args.rounds)
        run.decisions = compare(run.people, stored)
        for failure in run.failures[:5]:
            log(f'  participant failed: {failure}')
        silent = sum(p.silent_reloads for p in run.people)
        loads = Counter(t.page for p in run.people for t in p.timings if t.kind != 'gate_live')
        log(f'{app_name} {participants}: {run.duration:.0f} s, {run.submissions} submissions, '
            f'{run.page_loads} page loads ({run.per_participant_round(run.page_loads):.2f} per participant-round), '
            f'{run.requests} requests in all, {run.gate_visits} gate visits with {run.gate_live} live requests '
            f'(at most {run.gate_live_most} on one visit), {silent} wait-page reloads without '
            f'the WebSocket\'s word, {run.worker_loads} pages loaded by oTree\'s timeout worker, '
            f'p95 {run.latency_ms(95):.0f} ms, decisions {dict(run.decisions)}, '
            f'{"OK" if run.ok else "FAILED"}')
        passed = Counter(name.split('/')[1] if name.startswith('/') else name  # '/InitializeParticipant/<code>'
                         for p in run.people for t in p.timings for name in t.passed)
        log(f'  page loads by page landed on: {dict(loads.most_common(20))}')
        log(f'  pages passed through by a redirect without stopping: {dict(passed.most_common(20))}')
        log(f'  slowest (page landed on, load kind, p95 ms): {slowest_pages(run)}')
        if not run.ok:
            log(f'  server log tail:\n{server.log_tail(15)}')
    finally:
        server.stop()
    return run


# --- report ------------------------------------------------------------------------------------------

def machine_description(postgres) -> str:
    cpuinfo = Path('/proc/cpuinfo').read_text()
    model = re.search(r'^model name\s*:\s*(.+)$', cpuinfo, re.M)
    memory = re.search(r'^MemTotal:\s*(\d+) kB', Path('/proc/meminfo').read_text(), re.M)
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute('SHOW server_version')
        pg_version = cursor.fetchone()[0]
    return (f'{datetime.date.today()}, {os.cpu_count()} CPUs ({model.group(1) if model else "?"}), '
            f'{int(memory.group(1)) / 1024 ** 2:.0f} GiB RAM, PostgreSQL {pg_version}, '
            f'oTree {metadata.version("otree")}, Python {platform.python_version()}, '
            f'load average at start {os.getloadavg()[0]:.2f}')


def table(runs: list) -> str:
    header = ('app', 'participants', 'submissions', 'duration s', 'submissions/s', 'p50 ms', 'p95 ms',
              'p99 ms', 'HTTP 5xx', 'failed', 'timeouts', 'decisions sent / in DB', 'lost/extra/differing',
              'server CPU %', 'server CPU ms / submission', 'SQL statements / submission', 'client CPU %', 'page loads / participant-round',
              'requests / participant-round', 'gate visits / posts / live requests (most per visit)',
              "pages loaded by oTree's timeout worker")
    rows = [header, tuple('---' for _ in header)]
    for r in runs:
        d = r.decisions
        rows.append((r.app, r.participants, r.submissions, f'{r.duration:.0f}', f'{r.throughput:.1f}',
                     f'{r.latency_ms(50):.0f}', f'{r.latency_ms(95):.0f}', f'{r.latency_ms(99):.0f}',
                     r.http_5xx, len(r.failures) + r.unfinished, r.timeouts, f'{d["sent"]} / {d["stored"]}',
                     f'{d["lost"]}/{d["extra"]}/{d["differing"] + d["duplicated"]}',
                     f'{100 * r.server_cpu / r.duration:.0f}', f'{r.cpu_ms_per_submission:.1f}',
                     f'{r.sql_statements / r.submissions:.1f}' if r.sql_statements and r.submissions else '–',
                     f'{100 * r.client_cpu / r.duration:.0f}',
                     f'{r.per_participant_round(r.page_loads):.2f}', f'{r.per_participant_round(r.requests):.2f}',
                     f'{r.gate_visits} / {len(r.timings(("gate_retry",)))} / {r.gate_live} ({r.gate_live_most})',
                     r.worker_loads))
    return '\n'.join('| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows)


def ratios(runs: list) -> str:
    by_key = {(r.app, r.participants): r for r in runs}
    lines = []
    for n in sorted({r.participants for r in runs}):
        ps, tg = by_key.get(('partner_selection', n)), by_key.get(('trust_game', n))
        if ps and tg and tg.throughput and tg.latency_ms(95):
            lines.append(f'- {n} participants: partner_selection / trust_game p95 latency '
                         f'{ps.latency_ms(95) / tg.latency_ms(95):.2f}, throughput {ps.throughput / tg.throughput:.2f}, '
                         f'server CPU per submission {ps.cpu_ms_per_submission / tg.cpu_ms_per_submission:.2f}')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--participants', default='50,200,500', help='comma list of session sizes')
    parser.add_argument('--rounds', type=int, default=3, help='rounds played')
    parser.add_argument('--max-rounds', type=int, default=None,
                        help='OTREE_MAX_ROUNDS of the server (default: --rounds; oTree walks unplayed rounds)')
    parser.add_argument('--think-seconds', type=float, default=5.0,
                        help='mean pause on a page before submitting (uniform ±50%%)')
    parser.add_argument('--ramp-seconds', type=float, default=10.0,
                        help='participants open their link at a uniform random time in this window')
    parser.add_argument('--apps', default='partner_selection,trust_game')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--synchronous-commit', choices=('on', 'off'), default='off',
                        help="PostgreSQL's synchronous_commit (off: a commit does not wait for the WAL flush; "
                             'docs/hosting.md states the trade-off)')
    parser.add_argument('--sql-stats', action='store_true',
                        help='count the SQL statements per run (pg_stat_statements) and log the most called')
    parser.add_argument('--profile', metavar='DIR', default=None,
                        help='sample each server with py-spy into DIR (collapsed stacks and a top list per run)')
    args = parser.parse_args(argv)
    args.participants = [int(n) for n in args.participants.split(',')]
    args.apps = [a.strip() for a in args.apps.split(',')]
    args.max_rounds = args.max_rounds or args.rounds
    for app in args.apps:
        if app not in APPS:
            parser.error(f'unknown app {app!r}: choose from {", ".join(APPS)}')
        for n in args.participants:
            if n % APPS[app].group_size:
                parser.error(f'{app} needs a multiple of {APPS[app].group_size} participants, got {n}')
    if args.max_rounds < args.rounds:
        parser.error('--max-rounds must be at least --rounds')
    return args


def postgres_settings(args) -> dict:
    settings = dict(synchronous_commit=args.synchronous_commit)
    if args.sql_stats:
        settings['shared_preload_libraries'] = 'pg_stat_statements'
    return settings


def main(argv=None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix='load-study-', dir='/tmp'))
    os.chmod(base, 0o755)  # the postgres user must be able to enter it
    postgres = start_postgres(base / 'postgres', settings=postgres_settings(args))
    runs = []
    try:
        machine = machine_description(postgres)
        log(machine)
        for n in args.participants:
            for app in args.apps:
                runs.append(run_one(postgres, base, app, n, args))
    finally:
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f'Machine: {machine}')
    print(f'PostgreSQL synchronous_commit={args.synchronous_commit}. '
          f'{args.rounds} rounds played (OTREE_MAX_ROUNDS={args.max_rounds}), {args.think_seconds:g} s ±50 % '
          f'on each page, arrivals spread over {args.ramp_seconds:g} s; latency = start, submit and '
          'wait-page reload loads (redirects included); CPU % of one core.\n')
    print(table(runs))
    if ratios(runs):
        print('\n' + ratios(runs))
    return exit_status(runs)


def exit_status(runs) -> int:
    """1 (and the runs named) if any run lost, added, changed or duplicated a decision, else 0."""
    failed = [f'{r.app} {r.participants}' for r in runs if not r.ok]
    if failed:
        print(f'\nFAILED (lost, extra, differing or duplicated decisions, or participants that failed): '
              f'{", ".join(failed)}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
