"""Load benchmark, one server against two behind HAProxy (issue 14, item 5), in the same run.

For each session size and app: benchmarks/load_study.py's run on one `otree prodserver`, then the same
participants on a cluster of `--servers` prodservers behind HAProxy (hosting/cluster.py: one database per
server in the same PostgreSQL, the size split evenly into one session per server, each participant
entering on its server's link and sticky by cookie, WebSockets included). Same think time, arrivals,
policies and checks as load_study.py (it reuses its functions): the decisions participants saw accepted
are compared with what every server's database holds; exit 1 if one is lost, duplicated or differs.
Server CPU of the cluster is the sum over its servers (and HAProxy, shown separately).

    python3 benchmarks/load_cluster.py                                   # 50, 200, 500; both apps
    python3 benchmarks/load_cluster.py --participants 20 --rounds 1 --apps partner_selection  # smoke
    python3 benchmarks/load_cluster.py --participants 500 --think-seconds 15
    python3 benchmarks/load_cluster.py --cluster-apps partner_selection   # trust_game on one server only

Run it on an otherwise idle machine: it measures how far the servers' processes get, and every other
process on the cores takes from them. Progress goes to stderr, the table to stdout.
"""
import asyncio
import contextlib
import os
import random
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import load_study  # noqa: E402  (its functions: one server, stored decisions, the table)
from hosting.cluster import ClusterParticipant, port_free, start_cluster  # noqa: E402
from hosting.otree_server import free_port  # noqa: E402
from hosting.postgres import _run, postgres_bin_dir, start_postgres  # noqa: E402

log = load_study.log


async def play_cluster(cluster, sessions: list, app, args, run) -> None:
    """load_study.play, through HAProxy: every participant its own client (own cookie jar)."""
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as clients:
        people = []
        for i, (session, participant) in enumerate((s, p) for s in sessions for p in s['participants']):
            client = await clients.enter_async_context(httpx.AsyncClient(
                follow_redirects=True, timeout=load_study.REQUEST_TIMEOUT_SECONDS, verify=tls))
            rng = random.Random(args.seed * 1_000_003 + i)
            people.append(ClusterParticipant(
                cluster.url, participant['code'], app.policy(seed=args.seed * 1_000_003 + i), client,
                think_seconds=lambda rng=rng: args.think_seconds * rng.uniform(0.5, 1.5),
                stall_seconds=load_study.STALL_SECONDS, wait_reload_seconds=load_study.WAIT_RELOAD_SECONDS,
                server_name=session['server']))
        run.people = people
        arrivals = random.Random(args.seed)

        async def arrive_and_play(person):
            await asyncio.sleep(arrivals.uniform(0, args.ramp_seconds))
            await person.run()

        started = time.monotonic()
        outcomes = await asyncio.gather(*(arrive_and_play(p) for p in people), return_exceptions=True)
        run.duration = time.monotonic() - started
    run.failures = [repr(o)[:300] for o in outcomes if isinstance(o, BaseException)]
    run.unfinished = sum(1 for p in people if p.page is None or not p.page.is_finished)


def run_cluster(postgres, base: Path, app_name: str, participants: int, args):
    import psycopg2

    app = load_study.APPS[app_name]
    per_server, extra = divmod(participants, args.servers)
    if extra or per_server % app.group_size:
        raise SystemExit(f'{participants} participants do not split into {args.servers} sessions of whole groups')
    run = load_study.Run(f'{app_name} ({args.servers} servers, HAProxy)', participants, rounds=args.rounds)
    log(f'{run.app} {participants}: cluster start')
    for _ in range(50):
        port = free_port()
        if all(port_free(port + i) for i in range(args.servers + 1)):
            break
    cluster = start_cluster(base / f'cluster-{app_name}-{participants}', args.servers, postgres.url,
                            bind=f'127.0.0.1:{port}', base_port=port, reset=True,
                            extra_env={'OTREE_MAX_ROUNDS': str(args.max_rounds)})
    try:
        sessions = cluster.create_sessions(app.config, per_server, num_rounds=args.rounds)
        groups = [s.pgid for s in cluster.servers]
        log_starts = [len(s.log_text()) for s in cluster.servers]
        before = [load_study.process_group_cpu_seconds(g) for g in groups]
        proxy_before = load_study.process_group_cpu_seconds(cluster.haproxy_pid)
        client_before = time.process_time()
        asyncio.run(play_cluster(cluster, sessions, app, args, run))
        used = [load_study.process_group_cpu_seconds(g) - b for g, b in zip(groups, before)]
        run.server_cpu = sum(used)
        run.worker_loads = sum(load_study.worker_loads(s, start) for s, start in zip(cluster.servers, log_starts))
        run.client_cpu = time.process_time() - client_before
        proxy = load_study.process_group_cpu_seconds(cluster.haproxy_pid) - proxy_before
        stored, run.timeouts = {}, 0
        for server in cluster.servers:
            with psycopg2.connect(server.database_url) as connection, connection.cursor() as cursor:
                held, timeouts = app.stored(cursor, args.rounds)
            stored.update(held)
            run.timeouts += timeouts
        run.decisions = load_study.compare(run.people, stored)
        for failure in run.failures[:5]:
            log(f'  participant failed: {failure}')
        log(f'{run.app} {participants}: {run.duration:.0f} s, {run.submissions} submissions, '
            f'p95 {run.latency_ms(95):.0f} ms, server CPU per server '
            f'{", ".join(f"{100 * u / run.duration:.0f} %" for u in used)}, '
            f'HAProxy {100 * proxy / run.duration:.1f} %, '
            f'decisions {dict(run.decisions)}, {"OK" if run.ok else "FAILED"}')
    finally:
        cluster.stop()
    return run


def main(argv=None) -> int:
    parser_argv = list(sys.argv[1:] if argv is None else argv)
    servers, cluster_apps = 2, None
    if '--servers' in parser_argv:
        at = parser_argv.index('--servers')
        servers = int(parser_argv[at + 1])
        del parser_argv[at:at + 2]
    if '--cluster-apps' in parser_argv:  # the apps also run on the cluster (default: all of --apps)
        at = parser_argv.index('--cluster-apps')
        cluster_apps = [a.strip() for a in parser_argv[at + 1].split(',')]
        del parser_argv[at:at + 2]
    args = load_study.parse_args(parser_argv)
    args.servers = servers
    cluster_apps = args.apps if cluster_apps is None else cluster_apps
    base = Path(tempfile.mkdtemp(prefix='load-cluster-', dir='/tmp'))
    os.chmod(base, 0o755)  # the postgres user must be able to enter it
    postgres = start_postgres(base / 'postgres', settings=load_study.postgres_settings(args))
    _run([str(postgres_bin_dir() / 'psql'), '-h', str(postgres.directory), '-p', str(postgres.port), '-U',
          'postgres', '-d', 'postgres', '-c', 'ALTER ROLE otree CREATEDB'], 'ALTER ROLE')  # a database per server
    runs = []
    try:
        machine = load_study.machine_description(postgres)
        log(machine)
        for n in args.participants:
            for app in args.apps:
                runs.append(load_study.run_one(postgres, base, app, n, args))
                if app in cluster_apps:
                    runs.append(run_cluster(postgres, base, app, n, args))
    finally:
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f'Machine: {machine}')
    print(f'{args.rounds} rounds played (OTREE_MAX_ROUNDS={args.max_rounds}), {args.think_seconds:g} s ±50 % '
          f'on each page, arrivals spread over {args.ramp_seconds:g} s; CPU % of one core (cluster: all '
          'servers summed).\n')
    print(load_study.table(runs))
    if load_study.ratios(runs):
        print('\n' + load_study.ratios(runs))
    print()
    pairs = [(one, many) for one, many in zip(runs, runs[1:]) if many.app.startswith(f'{one.app} (')]
    for one, many in pairs:
        if one.throughput and one.latency_ms(95):
            print(f'- {one.app} {one.participants}: {args.servers} servers / 1 server throughput '
                  f'{many.throughput / one.throughput:.2f}, p95 latency {many.latency_ms(95) / one.latency_ms(95):.2f}')
    return load_study.exit_status(runs)


if __name__ == '__main__':
    sys.exit(main())
