"""Five people play two rounds of partner_selection in real Chromium tabs, as they would in the lab.

Per treatment (ps_disclosed, ps_hidden): 3 selectors and 2 human candidates (one of them on a phone-sized
screen), plus the server's 2 AI candidates. Everyone consents, reads the instructions, answers the
comprehension check (participant 1 gets it wrong first), candidates type messages (one with a <script>
tag, one with an emoji and a line break), selectors click cards (and guess who is an AI in the hidden
treatment), chosen candidates type returns (one tries too much first), everyone reads results, the
debrief and the payment page. What each person sees is checked against what the test did.
"""
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse

import pytest

from .people import ACTION_TIMEOUT_MS, NAVIGATION_TIMEOUT_MS, Person, Screenshots, play_together, round_from_title

NUM_ROUNDS = 2
NUM_PARTICIPANTS = 5
PHONE = dict(viewport={'width': 390, 'height': 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
DESKTOP = dict(viewport={'width': 1280, 'height': 900})
PHONE_PARTICIPANT = 3  # a selector (selectors come first in a group): the choice page on a phone
WRONG_FIRST_PARTICIPANT = 1  # answers the comprehension check wrongly once
XSS = '<script>window.__xss=1</script>'

# Innermost elements whose right edge is beyond the viewport, as 'tag.class (right px)'.
# (A phone zooms out to fit a too-wide page, so window.innerWidth grows: compare with the screen width.)
OVERFLOWING_ELEMENTS_JS = """(width) => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > width + 0.5)
  .filter(e => !Array.from(e.children).some(c => c.getBoundingClientRect().right > width + 0.5))
  .slice(0, 8)
  .map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : '')
       + ' (' + Math.round(e.getBoundingClientRect().right) + 'px)')"""

# Who each selector (numbered 1..3 in session order) picks, per round: a human candidate by number or an AI.
PLANNED_CHOICES = {1: ['H1', 'H2', 'AI'], 2: ['AI', 'H1', 'H1']}


def planned_message(candidate_number: int, round_number: int) -> str:
    """Candidate 1's message carries a script tag; candidate 2's an emoji and a line break."""
    if candidate_number == 1:
        return f'{XSS} I return half, promise (round {round_number}).'
    return f'Trust me 🤝 round {round_number}\nfair returns, always 🙂'


def planned_return(candidate_number: int, round_number: int, slot: int, received: int) -> int:
    """Distinct amounts per candidate, round and selector slot, all within 0..received."""
    return min(received, 14 + 3 * candidate_number + round_number - 8 * (slot - 1))


def money(amount: Decimal) -> str:
    """oTree's USD display: '$3.35'."""
    return '$' + str(amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP))


def number_after(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f'the page does not show {pattern!r}:\n{text}'
    return int(match.group(1))


@dataclass
class Card:
    label: str
    position: int
    message: str
    badge: Optional[str]
    human: Optional[int]  # our candidate number when its message is one we typed, else None (an AI)


@dataclass
class Ledger:
    """What the test did and what each person was shown, to check later pages against."""

    messages: Dict[Tuple[int, int], str] = field(default_factory=dict)  # (round, candidate) -> text typed
    choices: Dict[Tuple[int, int], Card] = field(default_factory=dict)  # (round, selector) -> card clicked
    correct_guesses: Dict[Tuple[int, int], int] = field(default_factory=dict)
    returns_typed: Dict[Tuple[int, int], List[int]] = field(default_factory=dict)  # (round, candidate)
    returns_unclaimed: Dict[Tuple[int, int], List[int]] = field(default_factory=dict)
    points: Counter = field(default_factory=Counter)  # id_in_session -> expected points so far
    phone_choice_checked: int = 0


class PartnerSelectionPlay:
    """Handlers for every page of partner_selection, for one session, sharing one Ledger."""

    def __init__(self, session: dict, people: List[Person], screenshots: Screenshots):
        self.config = session['config']
        self.treatment = self.config['identity']
        self.people = people
        self.shots = screenshots
        self.ledger = Ledger()
        self.endowment = self.config['endowment']
        self.received = self.endowment * self.config['multiplier']  # selectors always send everything here

    # --- who is who (learned from the Instructions page) ---
    def numbered(self, role: str) -> List[Person]:
        members = [p for p in self.people if p.role == role]
        assert all(p.role for p in self.people), 'roles must be known before the first round starts'
        return sorted(members, key=lambda p: p.id_in_session)

    def number_of(self, person: Person) -> int:
        return self.numbered(person.role).index(person) + 1

    def elicits_beliefs(self) -> bool:
        return bool(self.config['elicit_beliefs']) and self.treatment in ('hidden', 'false_label')

    def handlers(self) -> dict:
        """Page name -> what a person does there; on a phone, every page must first fit the screen."""
        pages = dict(
            Consent=self.consent,
            Rules=self.rules,
            Comprehension=self.comprehension,
            Instructions=self.instructions,
            WriteMessage=self.write_message,
            Choose=self.choose,
            Return=self.give_back,
            Feedback=self.feedback,
            Questionnaire=self.questionnaire,
            Debrief=self.debrief,
            Payment=self.payment,
        )
        return {name: self.on_phone_fits_first(handler) for name, handler in pages.items()}

    def on_phone_fits_first(self, handler):
        def visit(person: Person):
            if person.device == 'phone':
                self.check_fits_phone(person)
            handler(person)

        return visit

    # --- round 1 intro ---
    def consent(self, person: Person):
        box = person.page.get_by_label('I have read the information above and agree to take part.')
        box.check()
        assert box.is_checked()
        person.click_next()

    def instructions(self, person: Person):
        text = person.content_text()
        match = re.search(r'You are a (selector|candidate) for the whole study', text)
        assert match, f'{person.name}: no role on the instructions page:\n{text}'
        person.role = match.group(1)
        if self.treatment == 'hidden':
            assert 'You will not be told which candidate is which' in text, text
        else:
            assert 'Each candidate carries a label saying "AI" or "Human"' in text, text
        person.click_next()

    def rules(self, person: Person):
        assert 'How each round works' in person.content_text()
        person.click_next()

    # --- exit app ---
    def questionnaire(self, person: Person):
        """Answer every item: the first option of each choice or scale, the lowest number, a short text."""
        page = person.page
        for radio_name in sorted(set(page.locator('input[type=radio]').evaluate_all('els => els.map(e => e.name)'))):
            page.locator(f'input[type=radio][name={radio_name}]').first.check()
        for box in page.locator('input[type=number]').all():
            box.fill(box.get_attribute('min') or '0')
        for area in page.locator('textarea').all():
            area.fill('I compared the messages.')
        person.click_next()
        assert person.page_name != 'Questionnaire', f'{person.name}: answers rejected: {person.form_errors()}'

    def comprehension(self, person: Person):
        page = person.page
        right_received = self.received
        right_payoff, right_kept = 12, self.received - 12  # the example: all sent, 12 returned
        max_attempts = self.config['comprehension_max_attempts']
        assert f'You have {max_attempts} attempt(s) left.' in person.content_text()
        if person.id_in_session == WRONG_FIRST_PARTICIPANT:
            page.locator('input[name=comp_received]').fill(str(self.endowment))  # forgot the multiplier
            page.locator('input[name=comp_payoff]').fill(str(right_payoff))
            page.locator('input[name=comp_kept]').fill(str(right_kept))
            person.click_next()
            assert person.page_name == 'Comprehension', f'{person.name}: a wrong answer was accepted'
            errors = ' '.join(person.form_errors())
            assert 'Not quite: check how many points the candidate receives' in errors, errors
            assert f'Attempts left: {max_attempts - 1}' in errors, errors
            assert f'You have {max_attempts - 1} attempt(s) left.' in person.content_text()
            self.shots.take(person, '_wrong_answer')
        page.locator('input[name=comp_received]').fill(str(right_received))
        page.locator('input[name=comp_payoff]').fill(str(right_payoff))
        page.locator('input[name=comp_kept]').fill(str(right_kept))
        person.click_next()
        assert person.page_name != 'Comprehension', f'{person.name}: right answers rejected: {person.form_errors()}'

    # --- candidates ---
    def write_message(self, person: Person):
        assert person.role == 'candidate'
        round_number = round_from_title(person.title())
        number = self.number_of(person)
        message = planned_message(number, round_number)
        box = person.page.locator('textarea[name=message]')
        box.click()
        box.press_sequentially(message)  # key by key; '\n' is the Enter key
        assert box.input_value() == message
        typed_length = person.page.evaluate("document.querySelector('textarea[name=message]').value.length")
        assert person.page.locator('#ps-count').inner_text() == str(typed_length), 'the character counter is stale'
        self.ledger.messages[(round_number, number)] = message
        person.click_next()

    def give_back(self, person: Person):
        round_number = round_from_title(person.title())
        number = self.number_of(person)
        choosers = [card for (r, _), card in self.ledger.choices.items() if r == round_number and card.human == number]
        inputs = person.page.locator('input[name^=return_]')
        assert inputs.count() == len(choosers), f'{person.name}: {inputs.count()} return fields, {len(choosers)} choosers'
        text = person.content_text()
        assert f'sent you {self.endowment} points; you received {self.received} points' in text
        if number == 1 and round_number == 1:
            # Too much first: more than received must be refused with the allowed range.
            inputs.nth(0).fill(str(self.received + 1))
            for slot in range(1, inputs.count()):
                inputs.nth(slot).fill('0')
            person.click_next()
            assert person.page_name == 'Return', f'{person.name}: returning more than received was accepted'
            errors = ' '.join(person.form_errors())
            assert f'Enter a whole number from 0 to {self.received}.' in errors, errors
            self.shots.take(person, '_too_much')
        amounts = [planned_return(number, round_number, slot, self.received) for slot in range(1, inputs.count() + 1)]
        for slot, amount in enumerate(amounts):
            inputs.nth(slot).fill(str(amount))
        self.ledger.returns_typed[(round_number, number)] = amounts
        self.ledger.returns_unclaimed[(round_number, number)] = list(amounts)
        person.click_next()

    # --- selectors ---
    def read_cards(self, person: Person, round_number: int) -> List[Card]:
        ours = {text: number for (r, number), text in self.ledger.messages.items() if r == round_number}
        cards = []
        for position, card in enumerate(person.page.locator('.ps-card').all(), start=1):
            badges = card.locator('[data-badge]')
            assert badges.count() <= 1
            message = card.locator('.ps-message').inner_text()
            cards.append(
                Card(
                    label=card.get_attribute('data-card'),
                    position=position,
                    message=message,
                    badge=badges.inner_text().strip() if badges.count() else None,
                    human=ours.get(message),
                )
            )
        return cards

    def check_cards_as_seen(self, person: Person, cards: List[Card], round_number: int):
        page = person.page
        num_ai = self.config['num_ai_candidates']
        num_human = self.config['num_human_candidates']
        assert len(cards) == num_ai + num_human, f'{person.name} sees {len(cards)} cards'
        humans = sorted(card.human for card in cards if card.human)
        assert humans == list(range(1, num_human + 1)), (
            f'{person.name}: the typed messages do not appear as typed; cards show {[c.message for c in cards]!r}, '
            f'typed {self.ledger.messages!r}'
        )
        # The script tag is shown as text and never runs; no element is injected.
        assert page.evaluate('typeof window.__xss') == 'undefined', 'a candidate message executed as script'
        assert page.locator('.ps-message script').count() == 0
        assert any(XSS in card.message for card in cards)
        assert page.locator('.ps-message br').count() == 1, 'the line break of candidate 2 is not shown'
        ai_cards = [card for card in cards if card.human is None]
        if self.treatment == 'disclosed':
            assert [card.badge for card in ai_cards] == ['AI'] * num_ai
            assert all(card.badge == 'Human' for card in cards if card.human)
            assert page.locator('[data-badge=AI]').count() == len(ai_cards)
        else:
            assert page.locator('[data-badge], .ps-badge').count() == 0, 'the hidden treatment shows a badge'
            assert all(card.badge is None for card in cards)

    def check_history(self, person: Person, round_number: int, number: int):
        """From round 2 on, the selector's own past partners are listed with the letters clicked."""
        if round_number == 1 or not self.config['show_history']:
            return
        rows = person.page.locator('table.ps-history tr').all_inner_texts()
        for past in range(1, round_number):
            chosen = self.ledger.choices[(past, number)]
            row = next((r for r in rows if r.split()[0] == str(past)), '')
            assert chosen.label in row.split(), f'history row for round {past}: {row!r}, chose {chosen.label}'
            if self.treatment == 'disclosed':
                assert ('AI' if chosen.human is None else 'Human') in row.split()

    def check_fits_phone(self, person: Person):
        """No sideways scrolling on a phone; names the elements that stick out."""
        width = person.page.viewport_size['width']
        scroll_width = person.page.evaluate('document.documentElement.scrollWidth')
        if scroll_width > width:
            self.shots.take(person, '_too_wide')
            sticking_out = person.page.evaluate(OVERFLOWING_ELEMENTS_JS, width)
            raise AssertionError(
                f'{person.name}: {person.title()!r} scrolls sideways on a {width}px phone '
                f'(page {scroll_width}px wide); too wide: {sticking_out}'
            )

    def check_cards_fit_phone(self, person: Person, round_number: int):
        self.shots.take(person, f'_round{round_number}')
        width = person.page.viewport_size['width']
        for card in person.page.locator('.ps-card').all():
            box = card.bounding_box()
            assert box['x'] >= 0 and box['x'] + box['width'] <= width + 0.5, f'a card leaves the screen: {box}'
        self.ledger.phone_choice_checked += 1

    def choose(self, person: Person):
        page = person.page
        round_number = round_from_title(person.title())
        number = self.number_of(person)
        cards = self.read_cards(person, round_number)
        self.check_cards_as_seen(person, cards, round_number)
        self.check_history(person, round_number, number)
        if person.device == 'phone':
            self.check_cards_fit_phone(person, round_number)
        plan = PLANNED_CHOICES[round_number][number - 1]
        pick = next(c for c in cards if (c.human is None if plan == 'AI' else c.human == int(plan[1:])))
        card = page.locator(f'.ps-card[data-card="{pick.label}"]')
        card.locator('.ps-message').click()  # the whole card is the radio's label
        assert card.locator('input[name=choice]').is_checked(), 'clicking the card did not select it'
        if self.elicits_beliefs():
            if number == 1 and round_number == 1:
                person.click_next()  # forgot the guesses
                errors = ' '.join(person.form_errors())
                assert 'Please say for every candidate whether you think it is an AI' in errors, errors
                self.shots.take(person, '_missing_guesses')
                card = page.locator(f'.ps-card[data-card="{pick.label}"]')
                if not card.locator('input[name=choice]').is_checked():
                    card.locator('.ps-message').click()
            # Selector 1 takes everyone for an AI; the others guess right.
            guesses = ['ai' if number == 1 or c.human is None else 'human' for c in cards]
            for c, guess in zip(cards, guesses):
                page.locator(f'input[name=belief_{c.position}][value={guess}]').check()
            truth = ['ai' if c.human is None else 'human' for c in cards]
            self.ledger.correct_guesses[(round_number, number)] = sum(g == t for g, t in zip(guesses, truth))
        else:
            assert page.locator('input[name^=belief_]').count() == 0
        self.ledger.choices[(round_number, number)] = pick
        person.click_next()
        assert person.page_name != 'Choose', f'{person.name}: the choice was refused: {person.form_errors()}'

    # --- results ---
    def feedback(self, person: Person):
        round_number = round_from_title(person.title())
        number = self.number_of(person)
        text = person.content_text()
        shown_points = number_after(r'Your points this round: (\d+) points', text)
        if person.role == 'selector':
            pick = self.ledger.choices[(round_number, number)]
            assert f'You chose Candidate {pick.label} and sent {self.endowment} points' in text, text
            returned = number_after(r'returned (\d+) points to you', text)
            if pick.human is None:
                assert 0 <= returned <= self.received, f'an AI returned {returned} of {self.received}'
            else:
                unclaimed = self.ledger.returns_unclaimed[(round_number, pick.human)]
                assert returned in unclaimed, f'{person.name} got {returned}; candidate typed {unclaimed}'
                unclaimed.remove(returned)
            # the guesses are scored only after the last round: no accuracy, no bonus in the round's points
            assert 'Correct AI/human guesses' not in text, text
            expected = self.endowment - self.endowment + returned
        else:
            chosen_by = sum(1 for (r, _), card in self.ledger.choices.items() if r == round_number and card.human == number)
            returned = sum(self.ledger.returns_typed.get((round_number, number), []))
            received = chosen_by * self.received
            assert f'{chosen_by} selector(s) chose you. You received {received} points and returned {returned}.' in text, text
            expected = self.config['candidate_base_pay'] + received - returned
        assert shown_points == expected, f'{person.name} round {round_number}: shows {shown_points}, expected {expected}'
        self.ledger.points[person.id_in_session] += expected
        person.click_next()

    def debrief(self, person: Person):
        text = person.content_text()
        num_ai = self.config['num_ai_candidates']
        num_candidates = num_ai + self.config['num_human_candidates']
        if self.treatment == 'hidden':
            assert 'the candidates\' identities were hidden' in text
        assert f'{num_ai} of the {num_candidates} candidates in your group were AI agents' in text
        if person.role == 'selector':
            number = self.number_of(person)
            rows = person.page.locator('table').first.locator('tr').all_inner_texts()[1:]
            assert len(rows) == NUM_ROUNDS, rows
            for round_number, row in enumerate(rows, start=1):
                pick = self.ledger.choices[(round_number, number)]
                kind = 'an AI' if pick.human is None else 'a human participant'
                assert f'Candidate {pick.label}' in row and kind in row, f'debrief row {row!r}, chose {pick}'
            if self.elicits_beliefs():
                # accuracy per round, and the bonus of the paid round(s), shown here for the first time
                guesses = person.page.locator('table').nth(1).locator('tr').all_inner_texts()[1:]
                assert len(guesses) == NUM_ROUNDS, guesses
                paid = []
                for round_number, row in enumerate(guesses, start=1):
                    correct = self.ledger.correct_guesses[(round_number, number)]
                    assert f'{correct} of ' in row, f'guesses row {row!r}, {correct} right'
                    if row.rstrip().endswith('yes'):
                        paid.append(round_number)
                one = self.config.get('belief_payment', 'one_random_round') == 'one_random_round'
                assert len(paid) == (1 if one else NUM_ROUNDS), guesses
                bonus = sum(self.ledger.correct_guesses[(r, number)] for r in paid) * self.config['belief_bonus']
                assert f'Your bonus for correct guesses: {bonus} points' in text, text
                self.ledger.points[person.id_in_session] += bonus
        person.click_next()

    def payment(self, person: Person):
        text = person.content_text()
        points = self.ledger.points[person.id_in_session]
        earned = Decimal(str(self.config['real_world_currency_per_point'])) * points
        fee = Decimal(str(self.config['participation_fee']))
        assert f'You earned {points} points in total, worth {money(earned)}.' in text, text
        assert f'With the participation fee of {money(fee)}, you will be paid {money(earned + fee)}.' in text, text
        assert person.page.get_by_role('button', name='Next').count() == 0


def expected_visits(play: PartnerSelectionPlay, person: Person) -> List[str]:
    """The form pages a participant should have been shown, from the test's own plan."""
    pages = ['Consent', 'Rules', 'Comprehension', 'Instructions']
    for round_number in range(1, NUM_ROUNDS + 1):
        if person.role == 'selector':
            pages += ['Choose', 'Feedback']
        else:
            number = play.number_of(person)
            chosen = any(card.human == number for (r, _), card in play.ledger.choices.items() if r == round_number)
            pages += ['WriteMessage'] + (['Return'] if chosen else []) + ['Feedback']
    return pages + ['Questionnaire', 'Debrief', 'Payment']


GATES = ('AIMessagesGate', 'AIChoicesGate', 'ReturnsGate')


def count_gate_requests(page, counts: Counter) -> None:
    """Counts the messages a tab sends over an AI gate's live socket, per gate visit (page_name, page_index
    of the socket's URL): the gate asks the server when it can open instead of polling."""
    def on_socket(socket):
        query = parse_qs(urlparse(socket.url).query)
        gate = (query.get('page_name') or [''])[0]
        if '/live' in socket.url and gate in GATES:
            visit = (gate, query['page_index'][0])
            counts.setdefault(visit, 0)
            socket.on('framesent', lambda payload: counts.update([visit]))
    page.on('websocket', on_socket)


def open_participants(browser, server, session: dict) -> Tuple[list, List[Person]]:
    contexts, people = [], []
    for participant in sorted(session['participants'], key=lambda p: p['id_in_session']):
        phone = participant['id_in_session'] == PHONE_PARTICIPANT
        context = browser.new_context(**(PHONE if phone else DESKTOP))
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        page = context.new_page()
        person = Person(participant['id_in_session'], participant['code'], page, device='phone' if phone else 'desktop')
        person.watch()
        person.gate_requests = Counter()
        count_gate_requests(page, person.gate_requests)
        contexts.append(context)
        people.append(person)
    for person in people:
        person.page.goto(server.start_url(person.code), wait_until='load')
    return contexts, people


@pytest.mark.parametrize('config_name', ['ps_disclosed', 'ps_hidden'])
def test_five_people_play_two_rounds_in_chromium(browser, otree_server, screenshot_dir, config_name):
    session = otree_server.create_session(config_name, NUM_PARTICIPANTS, num_rounds=NUM_ROUNDS)
    assert session['config']['num_rounds'] == NUM_ROUNDS
    contexts, people = open_participants(browser, otree_server, session)
    try:
        screenshots = Screenshots(screenshot_dir, config_name)
        play = PartnerSelectionPlay(session, people, screenshots)
        play_together(people, play.handlers(), screenshots)

        for person in people:
            assert person.visits == expected_visits(play, person), f'{person.name} saw {person.visits}'
            assert not person.problems, f'{person.name}: ' + '\n'.join(person.problems)
        assert play.ledger.phone_choice_checked == NUM_ROUNDS, 'the phone participant never saw the choice page'
        # No polling: at most two live requests per participant and gate visit (one when the gate can open).
        gate_requests = {person.name: dict(person.gate_requests) for person in people if person.gate_requests}
        print(f'AI gate live requests per visit: {gate_requests}')
        assert all(n <= 2 for counts in gate_requests.values() for n in counts.values()), gate_requests
        # Every return a candidate typed reached exactly one selector.
        assert all(not left for left in play.ledger.returns_unclaimed.values()), play.ledger.returns_unclaimed
        # The server's own accounts agree with the payment pages.
        rate = Decimal(str(session['config']['real_world_currency_per_point']))
        paid = {p['code']: p['payoff_in_real_world_currency'] for p in otree_server.session_data(session['code'])['participants']}
        for person in people:
            expected = rate * play.ledger.points[person.id_in_session]
            assert Decimal(str(paid[person.code])) == expected, f'{person.name}: REST says {paid[person.code]}'
        errors = otree_server.app_tracebacks()
        assert not errors, 'the server logged errors:\n' + '\n\n'.join(errors)
    finally:
        for context in contexts:
            context.close()
