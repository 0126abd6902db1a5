"""The integrity rule (docs/DESIGN §1): in `hidden` and `false_label`, nothing a selector sees before the
debrief may be computed from a candidate's true kind.

Each check runs one partner_selection bot session twice (tests/leak_harness.py): the second run swaps
which candidates are AI and which are human while every decision stays the same (same card letters,
orders, messages, returns, choices and guesses), and the HTML of every page each selector saw before the
debrief must be identical in both runs (in false_label each card keeps the badge it showed: the false
label is the treatment's one designed use of the kind): the pages oTree's bots were served (consent, instructions,
comprehension, choice, feedback of every round) and every page of the selector's sequence rendered
afterwards, wait pages and the AI gates included. The runs use oTree's debug mode, whose panel prints
every template variable, so a kind passed to a template but not shown fails too.

The companion tests put a leak back and require the comparison to find it: today's "Correct AI/human
guesses: N (+bonus)" line on the Feedback page, and the belief bonus inside each round's payoff.

Not covered here: trust_game's hidden config (its AI and human trustees need different seat counts, so
the swap is not a relabelling there; its pages show no belief feedback).
"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / 'tests' / 'leak_harness.py'
OVERRIDES = ['num_rounds=3']
# Every page a selector can see before the debrief: the intro app's, partner_selection's page_sequence
# minus the candidates' pages and the arrival wait page of online sessions, and the exit app's questionnaire.
SELECTOR_PAGES = {'Consent', 'Rules', 'Comprehension', 'LabGroupingWaitPage', 'Instructions', 'RoundStart',
                  'MessagesWaitPage', 'AIMessagesGate', 'Choose', 'ChoicesWaitPage', 'ReturnsWaitPage',
                  'AIReturnsGate', 'Feedback', 'Questionnaire'}

_runs = {}


def run_pair(tmp_path_factory, config: str, inject: str = '') -> tuple:
    """(unswapped, swapped) harness outputs of one config, run side by side once per test session."""
    key = (config, inject)
    if key not in _runs:
        folder = tmp_path_factory.mktemp(f'leak_{config}_{inject or "clean"}')

        def run(swap: bool) -> dict:
            out = folder / f'swap{int(swap)}.json'
            cmd = [sys.executable, str(HARNESS), config, '--out', str(out)]
            cmd += ['--swap'] * swap + (['--inject', inject] if inject else [])
            for item in OVERRIDES:
                cmd += ['--set', item]
            done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f'{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}'
            return json.loads(out.read_text(encoding='utf8'))

        with ThreadPoolExecutor(2) as pool:
            _runs[key] = tuple(pool.map(run, (False, True)))
    return _runs[key]


def page_differences(first: dict, second: dict) -> list:
    """(selector, page, where, first line that differs) for every page that is not the same in both runs."""
    assert first['selectors'].keys() == second['selectors'].keys(), 'the runs seated different selectors'
    found = []
    for code, pages in first['selectors'].items():
        other = second['selectors'][code]
        assert [p[:2] for p in pages] == [p[:2] for p in other], f'selector {code} saw other pages'
        for (name, where, html), (_, _, html2) in zip(pages, other):
            if html != html2:
                a, b = html.split('> '), html2.split('> ')
                line = next((f'{x!r} != {y!r}' for x, y in zip(a, b) if x != y), 'lengths differ')
                found.append((code, name, where, line[:300]))
    return found


def assert_truth_swapped(first: dict, second: dict):
    """The two runs really differ in kinds (else identical pages would prove nothing)."""
    for code, truth in first['truth'].items():
        swapped = {'ai': 'human', 'human': 'ai', '': ''}
        assert second['truth'][code]['chosen_kinds'] == [swapped[k] for k in truth['chosen_kinds']]
    assert any(first['truth'][c]['belief_n_correct'] != second['truth'][c]['belief_n_correct'] for c in first['truth'])


@pytest.mark.bots
@pytest.mark.parametrize('config, treatment', [
    pytest.param('ps_hidden', 'hidden', id='ps_hidden'),
    pytest.param('ps_false_label', 'false_label', id='ps_false_label', marks=pytest.mark.slow),
])
def test_no_selector_page_before_the_debrief_depends_on_true_kinds(tmp_path_factory, config, treatment):
    first, second = run_pair(tmp_path_factory, config)
    assert {t['treatment'] for t in first['truth'].values()} == {treatment}
    assert_truth_swapped(first, second)
    for pages in first['selectors'].values():
        assert {name.split(':', 1)[1] for name in (p[0] for p in pages) if name.startswith('rendered:')} \
            == SELECTOR_PAGES
        assert sum(p[0] == 'served:Feedback' for p in pages) == 3  # every round's feedback, as served
    assert page_differences(first, second) == []


@pytest.mark.bots
@pytest.mark.slow
@pytest.mark.parametrize('leak', ['feedback_line', 'round_bonus'])
def test_the_leak_check_finds_belief_feedback_put_back(tmp_path_factory, leak):
    """Today's leaks put back (tests/leak_harness.py --inject): the accuracy line on the Feedback page, and
    the belief bonus in the round payoff the Feedback page shows. The comparison must flag the Feedback page."""
    first, second = run_pair(tmp_path_factory, 'ps_hidden', leak)
    assert_truth_swapped(first, second)
    found = page_differences(first, second)
    assert found, f'the injected leak {leak} went unnoticed'
    assert {name for _, name, _, _ in found} <= {'served:Feedback', 'rendered:Feedback'}
    assert any(name == 'served:Feedback' for _, name, _, _ in found)
