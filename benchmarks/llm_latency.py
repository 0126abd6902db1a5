"""Does a slow LLM endpoint slow down everyone else? Page latency with a 3 s endpoint vs the scripted policy.

    python3 benchmarks/llm_latency.py [--repeats 4] [--groups 5] [--rounds 3] [--think-seconds 3] [--delay 3]

Starts a private PostgreSQL and `otree prodserver` (hosting/), then plays the same partner_selection
session (ps_disclosed: groups of 3 selectors + 2 human candidates, 2 AI candidates each) with simulated
HTTP participants (hosting/http_participant.py: forms, wait-page WebSockets, AI gates): after an
unmeasured warm-up, `ai_policy='scripted'` and `ai_policy='llm'` alternate in ABBA order, the llm
sessions pointed at a loopback OpenAI-compatible endpoint that answers every call after `--delay`
seconds (tests/llm_fixtures.py, mode 'slow'). All groups play at the
same time, each starting at a random offset, and every participant thinks `--think-seconds` (seeded
jitter, 0.5x-1.5x) before each form submission, so one group's AI calls are in flight while other
participants load pages.

Measured ("others' page latency"): the HTTP time of every form submission and every wait-page reload,
redirects included. Not measured there: re-posts of the AI gate pages (AIMessagesGate, ReturnsGate),
which are participants waiting for the AI on purpose; their waiting time is reported separately
(`AI gate wait`), next to the AI calls the database recorded (partner_selection_aicall: count,
fallbacks, latency), which shows the endpoint really took `--delay` seconds per call.

Prints one table row per run and per policy (pooled over repeats), then the ratio llm/scripted of p50
and p95 and PASS if the llm p95 is within 1.1x of the scripted p95. Exit status: 0 PASS, 1 FAIL,
2 a participant error, a refused submission, a server traceback, or an llm run that did not really
call the endpoint. Figures are quoted in docs/benchmarks.md ("LLM latency benchmark").
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'tests'))

import httpx  # noqa: E402

from hosting.http_participant import (  # noqa: E402
    GATE_PAGES, HttpParticipant, ParticipantError, PartnerSelectionPolicy, percentile)
from hosting.otree_server import start_server  # noqa: E402
from hosting.postgres import start_postgres  # noqa: E402
from llm_fixtures import FaultServer  # noqa: E402

CONFIG = 'ps_disclosed'
SELECTORS, HUMAN_CANDIDATES, AI_CANDIDATES = 3, 2, 2
GROUP_SIZE = SELECTORS + HUMAN_CANDIDATES
MEASURED_KINDS = ('submit', 'wait_reload')  # not 'gate_retry' (waiting for the AI) nor 'start'
RATIO_LIMIT = 1.1
SAFETY_NET_RELOAD_SECONDS = 60


@dataclass
class Run:
    """One session played under one policy."""

    policy: str
    repeat: int
    loads: list = field(default_factory=list)  # seconds of each measured page load
    gate_waits: list = field(default_factory=list)  # (gate page, seconds on it) per visit
    gate_posts: int = 0  # re-posts of a gate page (the server answering "not yet" or letting through)
    silent_reloads: int = 0  # wait-page reloads without the WebSocket's word (should be 0)
    ai_calls: list = field(default_factory=list)  # rows of partner_selection_aicall
    endpoint_requests: int = 0
    errors: list = field(default_factory=list)
    wall_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    machine_busy_cores: float = 0.0  # every process on the machine, this benchmark included


def jittered(think_seconds: float, seed: int):
    """A fresh pause before each form submission: think_seconds × U(0.5, 1.5), seeded per participant."""
    rng = random.Random(seed)
    return lambda: think_seconds * rng.uniform(0.5, 1.5)


def gate_waits(timings) -> list:
    """(gate, seconds) for each visit to an AI gate: from the load that showed it to the load that left it."""
    visits, gate, since = [], None, 0.0
    for timing in sorted(timings, key=lambda t: t.started_at):
        ended = timing.started_at + timing.seconds
        if gate is not None and timing.page != gate:
            visits.append((gate, ended - since))
            gate = None
        if gate is None and timing.page in GATE_PAGES:
            gate, since = timing.page, ended
    return visits


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, all processes) since boot."""
    values = [int(v) for v in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def ai_call_rows(pg, session_code: str) -> list:
    with pg.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.decision, c.policy, c.latency_ms, c.fallback, c.fallback_reason
                 FROM partner_selection_aicall c
                 JOIN partner_selection_group g ON g.id = c.group_id
                 JOIN otree_session s ON s.id = g.session_id
                WHERE s.code = %s""",
            (session_code,),
        )
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


async def play(server, session: dict, args, seed: int) -> list:
    """Every participant plays; each group starts at its own random offset. Returns the participants."""
    rng = random.Random(seed)
    people = sorted(session['participants'], key=lambda p: p.get('id_in_session', 0))
    offsets = [rng.uniform(0, 2 * args.think_seconds) for _ in range(args.groups)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(follow_redirects=True, timeout=120, limits=limits) as client:
        # A browser never reloads a wait page on its own; the safety-net reload is pushed out of the way.
        participants = [
            HttpParticipant(server.base_url, person['code'], PartnerSelectionPolicy(seed=seed * 1000 + index), client,
                            think_seconds=jittered(args.think_seconds, seed * 1000 + index),
                            wait_reload_seconds=SAFETY_NET_RELOAD_SECONDS)
            for index, person in enumerate(people)
        ]

        async def run(participant, offset):
            await asyncio.sleep(offset)
            await participant.run()

        tasks = [asyncio.create_task(run(p, offsets[i // GROUP_SIZE])) for i, p in enumerate(participants)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
    return participants


def run_once(server, pg, endpoint: FaultServer, policy: str, repeat: int, args) -> Run:
    overrides = dict(num_rounds=args.rounds, num_selectors=SELECTORS, num_human_candidates=HUMAN_CANDIDATES,
                     num_ai_candidates=AI_CANDIDATES, ai_policy=policy)
    if policy == 'llm':
        overrides.update(llm_base_url=endpoint.base_url, llm_model='slow-endpoint', llm_api_key_env='',
                         llm_timeout_seconds=args.delay + 20, ai_collect_deadline_seconds=args.delay + 30)
    session = server.create_session(CONFIG, args.groups * GROUP_SIZE, **overrides)
    result = Run(policy, repeat)
    requests_before = len(endpoint.requests)
    cpu_before = server_cpu_seconds(server.process.pid)
    busy_before = machine_busy_seconds()
    started = time.monotonic()
    participants = []
    try:
        participants = asyncio.run(play(server, session, args, seed=repeat))
    except ParticipantError as error:
        result.errors.append(str(error))
    result.wall_seconds = time.monotonic() - started
    result.server_cpu_seconds = server_cpu_seconds(server.process.pid) - cpu_before
    result.machine_busy_cores = (machine_busy_seconds() - busy_before) / result.wall_seconds
    result.endpoint_requests = len(endpoint.requests) - requests_before
    for participant in participants:
        result.loads += [t.seconds for t in participant.timings if t.kind in MEASURED_KINDS]
        result.gate_waits += gate_waits(participant.timings)
        result.gate_posts += sum(1 for t in participant.timings if t.kind == 'gate_retry')
        result.silent_reloads += participant.silent_reloads
        if participant.rejected:
            result.errors.append(f'{participant.code}: submissions refused on {participant.rejected}')
    result.ai_calls = ai_call_rows(pg, session['code'])
    return result


def row(label: str, runs: list) -> str:
    loads = [s for r in runs for s in r.loads]
    calls = [c for r in runs for c in r.ai_calls]
    fallbacks = sum(1 for c in calls if c['fallback'])
    llm_latency = [c['latency_ms'] / 1000 for c in calls if c['policy'] == 'llm' and not c['fallback']]
    waits = [s for r in runs for _, s in r.gate_waits]
    wall = sum(r.wall_seconds for r in runs)
    return (f"{label:<14s}{len(loads):>7d}{percentile(loads, 50) * 1000:>8.0f}{percentile(loads, 95) * 1000:>8.0f}"
            f"{percentile(loads, 99) * 1000:>8.0f}{max(loads, default=0) * 1000:>8.0f}"
            f"{len(calls):>7d}{fallbacks:>6d}"
            f"{(statistics.mean(llm_latency) if llm_latency else 0):>8.2f}"
            f"{len(waits):>7d}{(statistics.mean(waits) if waits else 0):>7.2f}{max(waits, default=0):>7.2f}"
            f"{sum(r.gate_posts for r in runs):>7d}"
            f"{wall:>8.0f}{sum(r.server_cpu_seconds for r in runs) / wall:>7.2f}"
            f"{sum(r.machine_busy_cores * r.wall_seconds for r in runs) / wall:>7.2f}")


HEADER = (f"{'run':<14s}{'loads':>7s}{'p50 ms':>8s}{'p95 ms':>8s}{'p99 ms':>8s}{'max ms':>8s}"
          f"{'AI':>7s}{'fb':>6s}{'call s':>8s}{'gates':>7s}{'mean s':>7s}{'max s':>7s}{'posts':>7s}{'wall s':>8s}{'cpu':>7s}{'busy':>7s}")
LEGEND = ("loads: form submissions + wait-page reloads (AI gate re-posts excluded); AI: AI calls recorded, "
          "fb: of them fallbacks,\ncall s: mean latency of the llm calls; gates: AI gate visits, mean s / "
          "max s on a gate, posts: gate re-posts; cpu: server CPU seconds per wall second;\nbusy: cores busy on the whole machine "
          "(this benchmark's server, client and PostgreSQL: about 0.5-1; more means other jobs were running)")


def check_llm_run(run: Run, args) -> list:
    """An llm run must have called the endpoint for every AI decision, each taking about --delay s."""
    problems = []
    llm_calls = [c for c in run.ai_calls if c['policy'] == 'llm']
    if not llm_calls or len(llm_calls) != len(run.ai_calls):
        problems.append(f'llm run {run.repeat}: {len(llm_calls)} of {len(run.ai_calls)} AI calls used the llm policy')
    if run.endpoint_requests < len(llm_calls):
        problems.append(f'llm run {run.repeat}: the endpoint saw {run.endpoint_requests} requests '
                        f'for {len(llm_calls)} AI calls')
    too_fast = [c for c in llm_calls if not c['fallback'] and c['latency_ms'] < 950 * args.delay]
    if too_fast:
        problems.append(f'llm run {run.repeat}: {len(too_fast)} calls took less than {args.delay} s')
    return problems


def machine() -> str:
    model = next((line.split(':', 1)[1].strip() for line in Path('/proc/cpuinfo').read_text().splitlines()
                  if line.startswith('model name')), platform.machine())
    memory = next((int(line.split()[1]) for line in Path('/proc/meminfo').read_text().splitlines()
                   if line.startswith('MemTotal')), 0)
    load = os.getloadavg()[0]
    return (f'{os.cpu_count()} cores ({model}), {memory / 2**20:.0f} GiB RAM, Python {platform.python_version()}, '
            f'load average {load:.2f} at start')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=4,
                        help='sessions per policy, in ABBA order (default 4)')
    parser.add_argument('--groups', type=int, default=5, help='groups of 5 humans playing at once (default 5)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds per session (default 3)')
    parser.add_argument('--think-seconds', type=float, default=3.0,
                        help='mean pause before each form submission, jittered 0.5x-1.5x (default 3)')
    parser.add_argument('--delay', type=float, default=3.0, help='seconds the endpoint takes per call (default 3)')
    args = parser.parse_args(argv)

    print(f'machine: {machine()}')
    print(f'scenario: {CONFIG}, {args.groups} groups x ({SELECTORS} selectors + {HUMAN_CANDIDATES} human '
          f'candidates, {AI_CANDIDATES} AI candidates), {args.rounds} rounds, think {args.think_seconds} s '
          f'(x0.5-1.5), endpoint delay {args.delay} s, {args.repeats} repeats per policy', flush=True)
    base = Path(tempfile.mkdtemp(prefix='llm_latency_', dir='/tmp'))
    os.chmod(base, 0o755)  # the postgres user must enter it
    endpoint = FaultServer('slow', delay=args.delay).start()
    pg = start_postgres(base / 'pg')
    server = None
    runs = []
    try:
        server = start_server(base / 'server', database_url=pg.url,
                              extra_env={'OTREE_MAX_ROUNDS': str(args.rounds)})
        # Warm-up, not measured: the first LLM call of a server process imports httpcore and builds the
        # SSL context (~0.5 s holding the GIL, once), and the first pages fill oTree's caches.
        warm_up = argparse.Namespace(groups=1, rounds=1, think_seconds=0.2, delay=args.delay)
        for policy in ('scripted', 'llm'):
            run = run_once(server, pg, endpoint, policy, 0, warm_up)
            if run.errors:
                print(f'ERRORS in the warm-up: {run.errors}')
                return 2
        # ABBA order (scripted, llm, llm, scripted, ...) so a drift in the machine's load favours neither.
        for repeat in range(1, args.repeats + 1):
            for policy in (('scripted', 'llm') if repeat % 2 else ('llm', 'scripted')):
                run = run_once(server, pg, endpoint, policy, repeat, args)
                runs.append(run)
                print(f'  {policy} run {repeat}: {len(run.loads)} page loads in {run.wall_seconds:.0f} s, '
                      f'machine busy {run.machine_busy_cores:.2f} cores, {run.silent_reloads} silent reloads'
                      + (f', ERRORS: {run.errors}' if run.errors else ''), flush=True)
        tracebacks = server.app_tracebacks()
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        endpoint.stop()

    by_policy = {policy: [r for r in runs if r.policy == policy] for policy in ('scripted', 'llm')}
    print()
    print(HEADER)
    for run in runs:
        print(row(f'{run.policy} {run.repeat}', [run]))
    for policy, policy_runs in by_policy.items():
        print(row(f'{policy} pooled', policy_runs))
    print(LEGEND)

    pooled = {policy: [s for r in policy_runs for s in r.loads] for policy, policy_runs in by_policy.items()}
    ratio50 = percentile(pooled['llm'], 50) / percentile(pooled['scripted'], 50)
    ratio95 = percentile(pooled['llm'], 95) / percentile(pooled['scripted'], 95)
    for policy, policy_runs in by_policy.items():  # the run-to-run spread shows the noise of the machine
        p95s = [percentile(r.loads, 95) * 1000 for r in policy_runs]
        print(f'p95 of single {policy} runs: {min(p95s):.0f}-{max(p95s):.0f} ms')
    paired = sorted(percentile(l.loads, 95) / percentile(s.loads, 95)
                    for s, l in zip(by_policy['scripted'], by_policy['llm']))
    print('p95 ratio llm/scripted within each repeat: ' + ', '.join(f'{r:.2f}' for r in paired)
          + f' (median {statistics.median(paired):.2f})')
    print(f'\nratio llm/scripted (pooled): p50 {ratio50:.2f}, p95 {ratio95:.2f}')

    problems = [e for r in runs for e in r.errors]
    problems += [p for r in by_policy['llm'] for p in check_llm_run(r, args)]
    problems += [f'server traceback:\n{tb}' for tb in tracebacks]
    if problems:
        print('\nERRORS:\n' + '\n'.join(problems))
        return 2
    passed = ratio95 <= RATIO_LIMIT
    print(f"{'PASS' if passed else 'FAIL'}: others' p95 with a {args.delay:g} s endpoint is {ratio95:.2f}x "
          f"the scripted run's (limit {RATIO_LIMIT}x)")
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
