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

trust_game's hidden config is checked the same way for its trustors: one run with an AI trustee, one
with a human trustee who decides as the AI does (two seats against one, so only the trustor is compared),
in the seeded-random case (bad input, varied amounts) and the timeouts case (the trustor's Send times out
in round 1, the trustee's return in round 2: the same notice and 0 for either kind). Its companion test
puts back the trustor's SendWaitPage that was shown only with a human trustee.

The pages are the sequence a browser participant passes (the gates included, the bot-only wait pages
not), so a page shown to one kind's partners and not the other's fails as a differing page list.
"""
import html
import json
import re
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
                  'MessagesWaitPage', 'AIMessagesGate', 'Choose', 'ChoicesWaitPage', 'AIChoicesGate', 'ReturnsGate',
                  'Feedback',
                  'Questionnaire'}
# A trustor's: the intro app's, trust_game's own (no wait page between Send and Results but the gate),
# and the questionnaire.
TRUSTOR_PAGES = {'Consent', 'Rules', 'Comprehension', 'PairingWaitPage', 'Instructions', 'Send', 'ReturnGate',
                 'Results', 'Questionnaire'}

_runs = {}


def run_pair(tmp_path_factory, config: str, inject: str = '', case: str = '', extra: tuple = ()) -> tuple:
    """(unswapped, swapped) harness outputs of one config, run side by side once per test session."""
    key = (config, inject, case, extra)
    if key not in _runs:
        folder = tmp_path_factory.mktemp(f'leak_{config}_{inject or "clean"}_{case}{"_extra" if extra else ""}')

        def run(swap: bool) -> dict:
            out = folder / f'swap{int(swap)}.json'
            cmd = [sys.executable, str(HARNESS), config, '--out', str(out)]
            cmd += ['--swap'] * swap + (['--inject', inject] if inject else []) + (['--case', case] if case else [])
            for item in [*OVERRIDES, *extra]:
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
        if [p[:2] for p in pages] != [p[:2] for p in other]:
            found.append((code, 'sequence', '', f'{[p[0] for p in pages]} != {[p[0] for p in other]}'))
            continue
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
def test_candidate_capacity_moves_selectors_without_reading_kinds(tmp_path_factory):
    """candidate_capacity = 1 (3 selectors on 4 cards): the moved selectors, the cards they are moved to and the
    feedback notice are the same whichever candidates are AI."""
    first, second = run_pair(tmp_path_factory, 'ps_hidden', extra=('candidate_capacity=1',))
    assert_truth_swapped(first, second)
    feedback = [html for pages in first['selectors'].values() for name, _, html in pages if name == 'served:Feedback']
    assert any('was already full this round' in html for html in feedback), 'no round moved a selector'
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


def assert_partner_swapped(first: dict, second: dict):
    for code, truth in first['truth'].items():
        assert set(truth['chosen_kinds']) == {'ai'} and set(second['truth'][code]['chosen_kinds']) == {'human'}


@pytest.mark.bots
@pytest.mark.parametrize('case', ['random', pytest.param('timeouts', marks=pytest.mark.slow)])
def test_no_trustor_page_before_the_debrief_depends_on_the_trustees_kind(tmp_path_factory, case):
    first, second = run_pair(tmp_path_factory, 'trust_ai_hidden', case=case)
    assert {t['treatment'] for t in first['truth'].values()} == {'hidden'}
    assert_partner_swapped(first, second)
    for pages in first['selectors'].values():
        assert {name.split(':', 1)[1] for name in (p[0] for p in pages) if name.startswith('rendered:')} \
            == TRUSTOR_PAGES
        assert sum(p[0] == 'served:Results' for p in pages) == 3
        if case == 'timeouts':  # round 2's return timed out, announced alike for both kinds
            assert sum('id="return-timed-out"' in html for name, _, html in pages if name == 'served:Results') == 1
    assert page_differences(first, second) == []


@pytest.mark.bots
@pytest.mark.slow
def test_the_leak_check_finds_a_wait_page_shown_only_with_a_human_trustee(tmp_path_factory):
    """The trustor's SendWaitPage as it was: shown only when the trustee is human (where a trustee still on
    the last round's results made the trustor wait, and an AI never did). The page lists must differ."""
    first, second = run_pair(tmp_path_factory, 'trust_ai_hidden', 'send_wait')
    assert_partner_swapped(first, second)
    found = page_differences(first, second)
    assert [where for _, where, _, _ in found] == ['sequence']
    assert 'rendered:SendWaitPage' in found[0][3]


# Two AI selectors beside the human ones: an LLM one (its endpoint down, so its choice is the learner's, but its
# prompt is logged as sent) and a learner.
AI_SELECTORS = ('num_ai_selectors=2', 'ai_selector_policies=llm,learner', 'llm_base_url=http://127.0.0.1:9/v1',
                'llm_timeout_seconds=2')


def flat(text: str) -> str:
    return re.sub(r'\s+', ' ', text).strip()  # the harness compares pages with white space collapsed


def cards_on_page(page: str) -> list:
    """(letter, badge, message) per card of a rendered Choose page, in display order."""
    found = re.findall(r'<div class="ps-card" data-card="([^"]+)">(.*?)<div class="ps-message">(.*?)</div>', page)
    # escape_text writes a line break as <br> (a '<br>' typed in a message shows as &lt;br&gt;)
    return [(letter, (re.findall(r'data-badge="([^"]*)"', head) or [''])[0],
             flat(html.unescape(message.replace('<br>', '\n'))))
            for letter, head, message in found]


def cards_in_prompt(prompt: list) -> list:
    lines = re.findall(r'^- Candidate (\S+?)(?: \[label: (\w+)\])?: (".*")$', prompt[1]['content'], re.M)
    return [(letter, badge, flat(json.loads(message))) for letter, badge, message in lines]


def history_on_page(page: str) -> list:
    table = page.split('class="ps-history', 1)[1].split('</table>', 1)[0] if 'ps-history' in page else ''
    rows = [re.findall(r'<td>(.*?)</td>', row) for row in re.findall(r'<tr>(.*?)</tr>', table)]
    return [(r[0], 'no choice') if r[1] == 'no choice' else (r[0], r[1], r[-2], r[-1]) for r in rows if r]


def history_in_prompt(prompt: list) -> list:
    text = prompt[1]['content']
    rows = re.findall(r'^- Round (\d+): Candidate (\S+?)(?: \(label \w+\))?, you sent (\d+), returned to you (\d+)\.$',
                      text, re.M)
    missed = re.findall(r'^- Round (\d+): no choice', text, re.M)
    return sorted([tuple(r) for r in rows] + [(r, 'no choice') for r in missed], key=lambda r: int(r[0]))


@pytest.mark.bots
@pytest.mark.slow
def test_an_llm_selectors_prompt_is_what_the_seats_page_shows_and_nothing_computed_from_kinds(tmp_path_factory):
    """(1) For every human selector and round, the prompt an LLM AI selector gets in that seat
    (round_flow.selector_view, the view of every AI selector) holds the cards of the seat's Choose page, in
    its order, with the same letters, badges and messages, and the same history rows. (2) In hidden, with the
    candidates' kinds swapped and their decisions kept, every such prompt, every AI selector's logged prompt
    and choice, and every human selector's page are the same."""
    first, second = run_pair(tmp_path_factory, 'ps_hidden', extra=AI_SELECTORS)
    assert_truth_swapped(first, second)
    checked = 0
    for code, prompts in first['prompts'].items():
        pages = {where: page for name, where, page in first['selectors'][code] if name == 'rendered:Choose'}
        assert len(prompts) == 3
        for round_number, prompt in prompts:
            page = pages[str(round_number)]
            assert cards_in_prompt(prompt) == cards_on_page(page) != []
            assert history_in_prompt(prompt) == history_on_page(page)
            assert len(history_on_page(page)) == round_number - 1
            checked += 1
    assert checked == 9  # 3 human selectors × 3 rounds
    assert first['prompts'] == second['prompts']
    calls = first['ai_selector_calls']
    assert [(r, s) for r, s, _, _ in calls] == [(r, s) for r in (1, 2, 3) for s in ('S1', 'S2')]
    assert all(json.loads(prompt) for r, s, prompt, _ in calls if s == 'S1')  # the llm seat's prompt, logged
    assert calls == second['ai_selector_calls']
    assert page_differences(first, second) == []
