"""LLM agents in the population engine against a local llama.cpp server: calls/s and mean latency at
llm_concurrency 1, 4 and 16.

    python benchmarks/bench_population_llm.py [--selectors 8] [--servers 2] [--slots 16] [--levels 1,4,16]
        [--max-tokens 48] [--setups one,k,native,fake]

One society (one group of `--selectors` LLM selectors, one LLM AI candidate and one scripted human-like
candidate, hidden, one round: 1 message, `--selectors` choices, a return per choice of the AI) is played per
level. llama-cpp-python's server has one model behind one lock (no parallel slots, unlike llama.cpp's own
`llama-server --parallel`), so one server answers one request at a time; the benchmark therefore measures
twice: one server with `--threads` threads, and `--servers` K server processes of `--threads // K` thread(s)
each behind `llm_base_urls`; llama.cpp's own `llama-server --parallel P` (`--slots`, comma-separated for
several runs), which decodes the requests of its P slots together in one batch (continuous batching), with
`--threads` threads; and, to tell the engine's concurrency from the model's CPU bound, a loopback endpoint
that only waits (`--fake-delay` seconds per call, tests/llm_fixtures.py's `slow` fault server).
PASS when throughput at the highest level is at least 2x that at 1, per setup.
SmolLM2-135M often copies the reply form instead of a card letter, so selector choices fall back (counted);
the calls are real calls all the same. Needs .venv-llm (bash scripts/setup_llm_server.sh); the native setup
needs .venv-llm/bin/llama-server (bash scripts/setup_llama_server.sh) and is skipped, saying so, without it.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tests'))

from llm_fixtures import (LLAMA_SERVER_BIN, NATIVE_SETUP_HINT, FaultServer, start_llama_server,  # noqa: E402
                          start_native_llama_server, stop_process)
from population import from_mapping, run  # noqa: E402


def society(urls, concurrency, selectors, max_tokens):
    return from_mapping(dict(
        selectors_per_group=selectors, num_human_candidates=1, num_ai_candidates=1, rounds=1, identity='hidden',
        ai_policies=['llm'], selector_policy='llm', llm_base_urls=list(urls), llm_api_key_env='',
        llm_model='smollm2', llm_max_tokens=max_tokens, llm_timeout_seconds=120, llm_concurrency=concurrency))


def measure(urls, levels, selectors, max_tokens) -> dict:
    """{level: (calls, seconds, mean latency ms, fallbacks)} for one setup of servers."""
    out = {}
    for level in levels:
        started = time.perf_counter()
        calls = run(society(urls, level, selectors, max_tokens)).ai_calls_frame()
        seconds = time.perf_counter() - started
        out[level] = (len(calls), seconds, statistics.mean(calls['latency_ms']), int(calls['fallback'].sum()))
        reasons = calls.loc[calls['fallback'].astype(bool), 'fallback_reason'].value_counts().to_dict() \
            if 'fallback_reason' in calls else {}
        print(f'  concurrency {level:>3}: {len(calls):>3} calls in {seconds:6.1f} s = {len(calls) / seconds:5.2f} '
              f'calls/s, mean latency {out[level][2]:7.0f} ms, fallbacks {out[level][3]} {reasons or ""}, '
              f'load {os.getloadavg()[0]:.1f}', flush=True)
    return out


def verdict(name, figures, levels) -> bool:
    low, high = levels[0], levels[-1]
    rate = {level: calls / seconds for level, (calls, seconds, _, _) in figures.items()}
    ok = rate[high] >= 2 * rate[low]
    print(f'{name}: throughput at {high} / at {low} = {rate[high] / rate[low]:.2f}x -> '
          f'{"PASS" if ok else "FAIL"} (needs >= 2x)', flush=True)
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--selectors', type=int, default=8)
    parser.add_argument('--servers', type=int, default=2, help='K server processes for the second setup')
    parser.add_argument('--threads', type=int, default=2, help='llama.cpp threads in all (per setup)')
    parser.add_argument('--levels', default='1,4,16')
    parser.add_argument('--max-tokens', type=int, default=48)
    parser.add_argument('--fake-delay', type=float, default=0.5, help='seconds the waiting endpoint takes per call')
    parser.add_argument('--slots', default='16', help='parallel slots of the native llama-server, e.g. 16 or 16,4')
    parser.add_argument('--setups', default='one,k,native,fake',
                        help='which of one (server), k (servers), native (llama-server --parallel), fake to run')
    args = parser.parse_args(argv)
    logging.getLogger('ai_partners').setLevel(logging.ERROR)  # every fallback is counted, not printed
    levels = [int(x) for x in args.levels.split(',')]
    print(f'cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}', flush=True)
    wanted = set(args.setups.split(','))
    # (name, start function returning (base_url, process, log), number of servers, threads each)
    setups = []
    if 'one' in wanted:
        setups.append(('1 server', start_llama_server, 1, args.threads))
    if 'k' in wanted:
        threads = max(1, args.threads // args.servers)
        setups.append((f'{args.servers} servers', start_llama_server, args.servers, threads))
    if 'native' in wanted:
        if LLAMA_SERVER_BIN.exists():
            for slots in (int(x) for x in args.slots.split(',')):
                start = (lambda slots: lambda n_threads: start_native_llama_server(slots, n_threads=n_threads))(slots)
                setups.append((f'llama-server --parallel {slots}', start, 1, args.threads))
        else:
            print(f'native llama-server: skipped, {LLAMA_SERVER_BIN} is missing; {NATIVE_SETUP_HINT}', flush=True)
    verdicts = []
    if 'fake' in wanted:
        server = FaultServer('slow', delay=args.fake_delay).start()
        try:
            print(f'waiting endpoint ({args.fake_delay} s per call, no CPU):', flush=True)
            verdicts.append(verdict('waiting endpoint', measure([server.base_url], levels, args.selectors,
                                                                args.max_tokens), levels))
        finally:
            server.stop()
    for name, start, k, threads in setups:
        processes = []
        try:
            urls = []
            for _ in range(k):
                url, process, _log = start(n_threads=threads)
                urls.append(url)
                processes.append(process)
            print(f'{name} ({threads} thread(s) each):', flush=True)
            run(society(urls, 1, 1, args.max_tokens))  # warm-up: the first call loads the model into memory
            verdicts.append(verdict(name, measure(urls, levels, args.selectors, args.max_tokens), levels))
        finally:
            for process in processes:
                stop_process(process)
    return 0  # a measurement: the verdicts are printed above


if __name__ == '__main__':
    sys.exit(main())
