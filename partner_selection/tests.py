import random
import re

from otree.api import Bot, Submission, SubmissionMustFail, expect
from otree.database import db

from study.ai_decisions import FALLBACK_TIMED_OUT
from study.config import config_of, is_last_round

from . import *

# Cases run the whole session once each (`otree test ps_disclosed` runs all three):
# normal    – everybody answers; payoffs reconcile; badges match the treatment.
# bad_input – every kind of invalid submission is rejected first, then valid ones go through.
# timeouts  – pages time out: flagged, never counted as a decision; a candidate who times out twice
#             in a row is dropped from later rounds (and leaves for the exit app).
# The intro app's bots (intro/tests.py) consent and answer the checks, or are routed out in the timeouts
# case; the exit app's bots answer the questionnaire and check the payment page. In every case,
# participants who cannot fill a group (session config remainder = leave) leave for the exit app at once
# with the participation fee; a smaller group (remainder = smaller_group) plays, flagged.
CASES = ['normal', 'bad_input', 'timeouts']

MESSAGE = 'Hi selectors!\nI return half 🙂 <b>promise</b>'
# MESSAGE with NUL, a right-to-left override, an isolate, a bell and a CRLF line break: stored as MESSAGE
DIRTY_MESSAGE = '\x00Hi \u202eselectors!\r\nI return\u2066 half 🙂 <b>promise</b>\x07\u200f'
# Not a plain whole number in range, though Python's int() takes the first three (a form error each)
NOT_PLAIN_NUMBERS = ('\u0665', ' 5 ', '+5', '1_000')
TOO_BIG = '1' * 20  # more digits than any integer column takes


def expected_return(received: int) -> int:
    """What a cooperative human-candidate bot returns."""
    return received // 2


def is_dropout_candidate(bot) -> bool:
    return bot.case == 'timeouts' and bot.participant.candidate_id == 'H1'


class PlayerBot(Bot):
    cases = CASES

    @property
    def player(self):
        # The bot reads through its own long-lived DB session while pages are served in others;
        # expire it so every read sees what the server committed (other players' decisions included).
        db.expire_all()
        return super().player

    def play_round(self):
        config = self.session.config
        if self.round_number > config['num_rounds']:
            return
        pp = self.participant
        if pp.dropped or (pp.excluded and not is_left_over(self.player)):
            return  # routed out in the intro app, or dropped: in the exit app already
        if is_left_over(self.player):
            if self.round_number == 1:
                self.check_left_over()
            return
        if self.round_number == 1:
            self.check_group_flags()
            yield Instructions
        if pp.ps_role == C.CANDIDATE:
            yield from self.write_message()
        else:
            yield from self.choose()
        if is_active_candidate(self.player) and self.player.return_slots:
            yield from self.return_points()
        if not pp.dropped:
            yield from self.check_feedback()
        if is_last_round(self.player) or pp.dropped:
            self.finish()

    def check_left_over(self):
        """remainder = leave: excluded with the reason, no role, nothing earned, in the exit app at once
        (its bot checks the payment page)."""
        pp = self.participant
        expect(self.session.config['remainder'], 'leave')
        expect(pp.excluded, True)
        expect(pp.exclusion_reason, 'left_over')
        expect(pp.ps_role, '')
        expect(self.player.group.incomplete, True)
        expect(pp.payoff, 0)
        expect('Payment', 'in', self.html)

    def check_group_flags(self):
        """A group that plays is complete, or smaller and flagged (only with remainder = smaller_group)."""
        config = self.session.config
        group = self.player.group
        size = config['num_selectors'] + config['num_human_candidates']
        expect(group.incomplete, len(group.get_players()) < size)
        if group.incomplete:
            expect(config['remainder'], 'smaller_group')

    def write_message(self):
        if not is_active_candidate(self.player):
            return
        limit = self.session.config['max_message_length']
        if self.case == 'bad_input':
            yield SubmissionMustFail(WriteMessage, dict(message='x' * (limit + 1)))
            expect(f'the limit is {limit}', 'in', self.html)
            yield SubmissionMustFail(WriteMessage, dict(message='   '))
            yield SubmissionMustFail(WriteMessage, dict(message='\x00\u202e \u2066\x1b'))  # nothing left once cleaned
        if is_dropout_candidate(self):
            yield Submission(WriteMessage, timeout_happened=True, check_html=False)
            expect(self.player.message_timed_out, True)
            return
        yield WriteMessage, dict(message=DIRTY_MESSAGE if self.case == 'bad_input' else MESSAGE)
        expect(self.player.message, MESSAGE)  # stored cleaned

    def choose(self):
        player = self.player
        config = self.session.config
        ids = player.offered_candidate_ids.split(';')
        labels = player.offered_display_labels.split(';')
        kinds = [society.kind_of(cid) for cid in ids]
        self.check_badges(kinds)
        expect(self.html.count('name="choice"'), len(ids))
        if self.case == 'bad_input':
            yield SubmissionMustFail(Choose, {})
            yield SubmissionMustFail(Choose, dict(choice='Q'))  # Q is never a card letter
            if elicits_beliefs(player):
                yield SubmissionMustFail(Choose, dict(choice=labels[0]))
            if config['selector_chooses_amount']:
                yield SubmissionMustFail(Choose, dict(choice=labels[0], amount=config['endowment'] + 1))
                for bad in NOT_PLAIN_NUMBERS + (TOO_BIG, -1):
                    beliefs = {f'belief_{i}': 'ai' for i in range(1, len(ids) + 1)} if elicits_beliefs(player) else {}
                    yield SubmissionMustFail(Choose, dict(beliefs, choice=labels[0], amount=bad), error_fields=['amount'])
        if self.case == 'timeouts' and self.round_number == 2:
            yield Submission(Choose, timeout_happened=True, check_html=False)
            expect(self.player.choice_timed_out, True)
            expect(self.player.chosen_candidate_id, '')
            return
        rng = random.Random(f'{self.participant.code}-{self.round_number}')
        pick = rng.randrange(len(ids))
        data = dict(choice=labels[pick])
        if config['selector_chooses_amount']:
            data['amount'] = rng.randint(0, config['endowment'])
        if elicits_beliefs(player):
            for position, kind in enumerate(kinds, start=1):
                data[f'belief_{position}'] = kind if position % 2 else rng.choice(['ai', 'human'])
        yield Choose, data
        expect(self.player.choice, labels[pick])
        # the pick, unless its card was full (candidate_capacity) and the choices are processed already
        expect(self.player.chosen_candidate_id == ids[pick] or self.player.choice_reassigned, True)
        if elicits_beliefs(player):
            # counted here from the guesses and the true kinds, not read back from the app
            correct = sum(data[f'belief_{position}'] == kind for position, kind in enumerate(kinds, start=1))
            expect(self.player.belief_n_correct, correct)
            expect(self.player.belief_bonus_earned, correct * config['belief_bonus'])

    def check_badges(self, kinds):
        """The badge shown matches the treatment: truth, nothing, or swapped."""
        html = self.html
        n_ai, n_human = kinds.count('ai'), kinds.count('human')
        treatment = self.player.treatment
        if treatment == 'hidden':
            expect('data-badge=', 'not in', html)
        elif treatment == 'disclosed':
            expect(html.count('data-badge="AI"'), n_ai)
            expect(html.count('data-badge="Human"'), n_human)
        else:
            expect(html.count('data-badge="AI"'), n_human)
            expect(html.count('data-badge="Human"'), n_ai)
        # messages are shown escaped, never as live HTML
        if MESSAGE in [c.message for c in round_candidates(self.group)]:
            expect('&lt;b&gt;promise&lt;/b&gt;', 'in', html)
            expect('<b>promise</b>', 'not in', html)

    def return_points(self):
        slots = return_slots(self.player)
        received = {field: selector.amount_sent * self.session.config['multiplier'] for field, selector in slots}
        if self.case == 'bad_input':
            field = slots[0][0]
            yield SubmissionMustFail(Return, {f: 0 for f in received} | {field: received[field] + 1})
            yield SubmissionMustFail(Return, {f: 0 for f in received} | {field: -1})
            yield SubmissionMustFail(Return, {f: 0 for f in received} | {field: 'abc'})
            for bad in NOT_PLAIN_NUMBERS + (TOO_BIG, C.MAX_RECEIVED + 1):
                yield SubmissionMustFail(Return, {f: 0 for f in received} | {field: bad}, error_fields=[field])
        if self.case == 'timeouts' and self.round_number == 1:
            yield Submission(Return, timeout_happened=True, check_html=False)
            expect(self.player.candidate_return_timed_out, True)
            return
        if is_dropout_candidate(self):
            yield Submission(Return, timeout_happened=True, check_html=False)
            return
        yield Return, {field: expected_return(value) for field, value in received.items()}

    def check_feedback(self):
        """Payoffs reconcile to the point for every participant, every round."""
        config = self.session.config
        player = self.player
        if player.ps_role == C.SELECTOR:
            self.check_capacity()
            if player.choice_timed_out:
                expect(player.payoff, config['endowment'])  # the belief bonus is paid only at the end
                expect('Time ran out', 'in', self.html)
            elif not player.chosen_candidate_id:  # moved off a full card, and no other card had room
                expect(player.choice_reassigned, True)
                expect(player.payoff, config['endowment'])
                expect('No other candidate had room', 'in', self.html)
            else:
                if player.choice_reassigned:
                    expect('was already full this round', 'in', self.html)
                else:
                    expect('was already full this round', 'not in', self.html)
                expect(player.amount_sent * config['multiplier'] >= player.amount_returned, True)
                candidate = next(c for c in round_candidates(self.group) if c.candidate_id == player.chosen_candidate_id)
                if candidate.kind == 'human':
                    author = next(p for p in self.group.get_players() if p.candidate_id == candidate.candidate_id)
                    if author.candidate_return_timed_out:
                        expect(player.amount_returned, 0)
                        expect(player.return_timed_out, True)
                    else:
                        expect(player.amount_returned, expected_return(player.amount_sent * config['multiplier']))
                else:
                    # a return not made in time counts as a human's timed-out one: 0 (the export keeps the fallback)
                    calls = [c for c in AICall.filter(group=self.group, candidate_id=candidate.candidate_id) if c.decision == 'return']
                    used = ['0' if c.fallback_reason in FALLBACK_TIMED_OUT else c.parsed_value for c in calls]
                    expect(str(player.amount_returned) in used, True)
                expect(
                    player.payoff,
                    config['endowment'] - player.amount_sent + player.amount_returned,
                )
        else:
            candidate = next(c for c in round_candidates(self.group) if c.candidate_id == player.candidate_id)
            # human and AI selectors alike
            choosers = [s for s in selector_seats(self.group) if s.chosen_candidate_id == player.candidate_id]
            expect(candidate.times_chosen, len(choosers))
            received = sum(p.amount_sent for p in choosers) * config['multiplier']
            returned = sum(p.amount_returned for p in choosers)
            expect(player.payoff, config['candidate_base_pay'] + received - returned)
            expect(f'{len(choosers)} selector(s) chose you', 'in', self.html)
            # market feedback: every active candidate's card of the round with its count, else none
            active = [c for c in round_candidates(self.group) if c.active]
            expect(self.html.count('class="ps-message"'), len(active) if config['market_feedback'] else 0)
            if config['market_feedback']:
                for c in active:
                    expect(f'<td>{c.times_chosen}</td>', 'in', self.html)
        expect('Correct AI/human guesses', 'not in', self.html)  # accuracy only after the last round
        self.check_ai_selectors()
        yield Feedback

    def check_capacity(self):
        """candidate_capacity: no candidate took more selectors; a moved selector picked a card that was full."""
        capacity = self.session.config.get('candidate_capacity', 0)
        seats = selector_seats(self.group)
        if not capacity:
            expect(any(s.choice_reassigned for s in seats), False)
            return
        for candidate in round_candidates(self.group):
            expect(candidate.times_chosen <= capacity, True)
        letters = dict(zip(self.player.offered_display_labels.split(';'), self.player.offered_candidate_ids.split(';')))
        if self.player.choice_reassigned:
            picked = letters[self.player.choice]
            expect(picked != self.player.chosen_candidate_id, True)
            # full when it was this seat's turn, and nobody leaves a card: it ends the round full
            expect(len([s for s in seats if s.chosen_candidate_id == picked]), capacity)

    def check_ai_selectors(self):
        """Every AI selector of the group chose a card it was shown, by its policy, and its payoff reconciles."""
        config = self.session.config
        seats = ai_selectors(self.group)
        expect(len(seats), config['num_ai_selectors'])
        for i, seat in enumerate(seats, start=1):
            policy = config_of(self.group).ai_selector_policy_of(i)
            expect(seat.policy.split(':')[0], policy)
            letters = dict(zip(seat.offered_candidate_ids.split(';'), seat.offered_display_labels.split(';')))
            if not seat.choice_reassigned:  # a moved seat keeps the letter it picked (check_capacity)
                expect(seat.chosen_candidate_id, 'in', seat.offered_candidate_ids.split(';'))
                expect(seat.choice, letters[seat.chosen_candidate_id])
            expect(seat.amount_returned <= seat.amount_sent * config['multiplier'], True)
            expect(seat.payoff, config['endowment'] - seat.amount_sent + seat.amount_returned)
            calls = [c for c in AICall.filter(group=self.group, candidate_id=seat.selector_id)
                     if c.decision == 'choice']
            expect(len(calls), 1)
            expect(calls[0].fallback, seat.choice_fallback)

    def finish(self):
        """After the last played round (or when dropped): what the exit app's debrief and payment show."""
        pp = self.participant
        config = self.session.config
        if pp.ps_role == C.CANDIDATE and self.case == 'timeouts':
            # the dropout candidate times out every message (and return): dropped for sure when the rounds
            # outnumber the limit (earlier when a timed-out return adds to the streak); nobody else is
            limit = config['dropout_after_timeouts']
            if not is_dropout_candidate(self):
                expect(pp.dropped, False)
            elif 0 < limit < config['num_rounds']:
                expect(pp.dropped, True)
        shown = pp.exit_vars
        # the debrief reveals who was an AI where the labels did not tell the truth
        expect(shown['reveal'], self.player.treatment in ('hidden', 'false_label'))
        expect(shown['num_ai'], config['num_ai_candidates'])
        played = self.player.in_all_rounds()[: config['num_rounds']]
        guessed = [p for p in played if p.belief_guesses]
        # the guesses' accuracy and bonus are paid once: one round drawn, or all rounds
        paid = [p for p in guessed if p.belief_round_paid]
        expect(len(paid), (1 if config['belief_payment'] == 'one_random_round' else len(guessed)) if guessed else 0)
        for p in played:
            expect(p.belief_bonus_paid, p.belief_bonus_earned if p.belief_round_paid else 0)
        bonus = sum(p.belief_bonus_paid for p in played)
        expect(shown['belief_bonus_total'], bonus)
        if pp.ps_role == C.SELECTOR:
            expect(len(shown['rounds']), len([p for p in played if p.chosen_candidate_id]))
        expect(pp.payoff, sum(p.payoff for p in played) + bonus)
