"""oTree bot sessions for the tests, run in a few oTree processes instead of one project copy per session.

A test names the sessions it needs with `@pytest.mark.otree_bots(BotJob(...), ...)` (or on a
`pytest.param`) and takes the session-scoped `otree_bot_runs` fixture (tests/conftest.py):

    JOB = BotJob('ps_hidden', case=0, overrides={'num_rounds': 3}, export=True)

    @pytest.mark.otree_bots(JOB)
    def test_something(otree_bot_runs):
        run = otree_bot_runs[JOB]
        assert run.ok, run.failure()
        rows = run.rows('partner_selection_custom')

The first test asking for the fixture runs the jobs of every *selected* test at once (so `-k`/`-m` run
only what they need), spread over OTREE_BOT_WORKERS processes (default: 2, or 1 on a one-core
machine). Each process is `scripts/bot_session.py --plan`: oTree's bots on an empty in-memory database,
with the test-only session configs of EXTRA_CONFIGS added at runtime. Identical jobs run once.
`run_bot_jobs` runs jobs at once, for tests whose fixtures (e.g. an LLM endpoint) live per test.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOT_SESSION = REPO / 'scripts' / 'bot_session.py'
RUN_TIMEOUT_SECONDS = 1800

# Test-only session configs, added to settings.py's SESSION_CONFIGS in the bot processes only.
EXTRA_CONFIGS = [
    dict(name='check_human_rematch', app_sequence=['intro', 'trust_game', 'exit'], num_demo_participants=6,
         partner='human', identity='false_label', rematch=True, num_rounds=3),
    dict(name='check_ai_hidden', app_sequence=['intro', 'trust_game', 'exit'], num_demo_participants=2,
         partner='ai', identity='hidden', num_rounds=3),
    # an LLM endpoint that refuses connections (port 9, "discard"): every AI return must fall back, flagged
    dict(name='check_ai_llm_down', app_sequence=['intro', 'trust_game', 'exit'], num_demo_participants=2,
         partner='ai', identity='disclosed', num_rounds=2, ai_policy='llm',
         llm_base_url='http://127.0.0.1:9/v1', llm_timeout_seconds=2),
    # partner_selection off its defaults: amounts chosen by selectors (their out-of-range amounts must be
    # refused), base pay for candidates, a small endowment and multiplier (the comprehension example scales),
    # and the candidates' market feedback.
    # The default 10 rounds: the bots' dropout candidate (two timed-out messages) is dropped at the start of
    # round 3.
    dict(name='check_ps_amounts', app_sequence=['intro', 'partner_selection', 'exit'], num_demo_participants=5,
         identity='hidden', elicit_beliefs=True, selector_chooses_amount=True,
         candidate_base_pay=5, endowment=4, multiplier=2, market_feedback=True),
    # the remainder policy (groups of 3 selectors + 2 human candidates): 12 participants = two complete groups
    # (hidden, disclosed) and a smaller one of 2 selectors, flagged, with the next treatment (hidden);
    # 7 participants with remainder = leave (every bot case): one group, 2 participants leave with the
    # participation fee.
    dict(name='check_ps_remainder_smaller', app_sequence=['intro', 'partner_selection', 'exit'], num_demo_participants=12,
         treatments='hidden,disclosed', remainder='smaller_group', num_rounds=2),
    dict(name='check_ps_remainder_leave', app_sequence=['intro', 'partner_selection', 'exit'], num_demo_participants=7,
         treatments='hidden,disclosed', remainder='leave', num_rounds=3),  # 3: the timeouts case's dropout
    # the journey online: 12 participants grouped by arrival; in the timeouts case the intro routes 2 out
    # (12 mod 5: one refuses consent, one fails the comprehension check), so the 10 qualified fill two groups.
    dict(name='check_journey_arrival', app_sequence=['intro', 'partner_selection', 'exit'], num_demo_participants=12,
         grouping='arrival', arrival_max_wait_seconds=0, treatments='hidden,disclosed', num_rounds=2,
         attention_check=True, prolific_completion_url='https://app.prolific.com/submissions/complete?cc=DONE',
         prolific_screened_out_url='https://app.prolific.com/submissions/complete?cc=SCREENED'),
    # compositions: two groups (hidden, disclosed) with different AI-candidate mixes (scripted seats that state
    # their intention, kept always / never / half the time), an AI selector beside the 3 people, and a capacity
    # of 1 per candidate (4 selectors, 4 candidates: every crowded card moves someone)
    dict(name='check_ps_compositions', app_sequence=['intro', 'partner_selection', 'exit'], num_demo_participants=10,
         treatments='hidden,disclosed', compositions='prosocial_ai:1,human_like:0;human_like:0.5,prosocial_ai',
         candidate_capacity=1, num_ai_selectors=1, ai_selector_policies='random', num_rounds=3),
]


@dataclass(frozen=True, eq=False)
class BotJob:
    """Bot sessions of one config: every bot case (case=None, like `otree test CONFIG N`) or one case."""

    config: str
    participants: int | None = None  # None: the config's num_demo_participants
    case: str | int | None = None
    overrides: dict = field(default_factory=dict, hash=False, compare=False)
    export: bool = False  # write the custom exports of the job's sessions

    @property
    def id(self) -> str:
        parts = [self.config, str(self.participants or 'demo'), 'all-cases' if self.case is None else str(self.case)]
        parts += [f'{k}={v}' for k, v in sorted(self.overrides.items())]
        return '_'.join(parts) + ('_export' if self.export else '')

    @property
    def folder_name(self) -> str:
        """The id, safe as a file name (URLs in overrides), made unique by a short hash."""
        safe = re.sub(r'[^A-Za-z0-9._=-]+', '-', self.id)[:80]
        return f"{safe}-{hashlib.sha1(self.id.encode()).hexdigest()[:8]}"

    def __hash__(self):
        return hash(self.id)

    def __eq__(self, other):
        return isinstance(other, BotJob) and other.id == self.id

    def cost(self) -> float:
        """A rough relative duration, to balance the processes."""
        cases = 4 if self.case is None else 1
        rounds = self.overrides.get('num_rounds', 10)
        return cases * rounds * (self.participants or 5)


@dataclass
class BotRun:
    job: BotJob
    ok: bool
    error: str
    session_codes: list
    out: Path | None
    seconds: float = 0.0
    log: Path | None = None

    def failure(self) -> str:
        """The job's traceback and the tail of its process's log, for an assertion message."""
        text = f'bot job {self.job.id} failed:\n{self.error}'
        if self.log and self.log.exists():
            lines = [ln for ln in self.log.read_text(encoding='utf8', errors='replace').splitlines()
                     if 'Submit ' not in ln]  # leave out the one-line-per-submission log
            text += f'\n--- tail of {self.log}:\n' + '\n'.join(lines[-40:])
        return text

    def export_path(self, name: str) -> Path:
        """name: the export file's stem, e.g. 'trust_game_custom' or 'partner_selection_ai_calls'."""
        assert self.out is not None, f'bot job {self.job.id} has export=False'
        return self.out / f'{name}.csv'

    def rows(self, name: str) -> list:
        with self.export_path(name).open(encoding='utf8', newline='') as f:
            return list(csv.DictReader(f))


def _assign(jobs: list, workers: int) -> list:
    """Longest job first onto the least loaded process."""
    groups = [[] for _ in range(max(1, min(workers, len(jobs))))]
    loads = [0.0] * len(groups)
    for job in sorted(jobs, key=lambda j: -j.cost()):
        i = loads.index(min(loads))
        groups[i].append(job)
        loads[i] += job.cost()
    return groups


def default_workers() -> int:
    return int(os.environ.get('OTREE_BOT_WORKERS') or min(2, os.cpu_count() or 1))


def run_bot_jobs(jobs, folder: Path, workers: int | None = None) -> dict:
    """Run the jobs in `workers` oTree processes; {job: BotRun}. Never raises for a failing job."""
    jobs = list(dict.fromkeys(jobs))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    processes = []
    for n, group in enumerate(_assign(jobs, workers or default_workers())):
        plan = dict(
            extra_configs=EXTRA_CONFIGS,
            jobs=[dict(id=j.id, config=j.config, participants=j.participants, case=j.case, overrides=j.overrides,
                       out=str(folder / j.folder_name) if j.export else None) for j in group],
            results=str(folder / f'results{n}.json'),
        )
        plan_path = folder / f'plan{n}.json'
        plan_path.write_text(json.dumps(plan, indent=1), encoding='utf8')
        log = folder / f'bots{n}.log'
        with log.open('w', encoding='utf8') as log_file:
            process = subprocess.Popen([sys.executable, str(BOT_SESSION), '--plan', str(plan_path)], cwd=REPO,
                                       stdout=log_file, stderr=subprocess.STDOUT)
        processes.append((process, group, Path(plan['results']), log))
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    runs = {}
    for process, group, results_path, log in processes:
        try:
            returncode = process.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            returncode = f'killed after {RUN_TIMEOUT_SECONDS} s'
        results = json.loads(results_path.read_text(encoding='utf8')) if results_path.exists() else {}
        for job in group:
            done = results.get('jobs', {}).get(job.id)
            if done is None:
                error = results.get('setup_error') or f'the bot process ended (exit status {returncode}) ' \
                                                      f'before this job finished'
                runs[job] = BotRun(job, False, error, [], None, log=log)
            else:
                runs[job] = BotRun(job, done['ok'], done['error'], done['session_codes'],
                                   Path(done['out']) if done['out'] else None, done['seconds'], log)
    return runs


def jobs_of(items) -> list:
    """The BotJobs that the given pytest items ask for with @pytest.mark.otree_bots."""
    jobs = []
    for item in items:
        for mark in item.iter_markers('otree_bots'):
            for job in mark.args:
                assert isinstance(job, BotJob), f'{item.nodeid}: otree_bots takes BotJob arguments, got {job!r}'
                jobs.append(job)
    return list(dict.fromkeys(jobs))


class BotRuns:
    """What the `otree_bot_runs` fixture gives: runs[job] -> BotRun."""

    def __init__(self, runs: dict):
        self._runs = runs

    def __getitem__(self, job: BotJob) -> BotRun:
        if job not in self._runs:
            raise LookupError(f'bot job {job.id} did not run: declare it with @pytest.mark.otree_bots(job) on the test')
        return self._runs[job]
