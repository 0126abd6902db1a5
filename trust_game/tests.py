import random
import re

from otree.api import Bot, Submission, SubmissionMustFail, expect
from otree.database import db

from ai_partners import GameView, make_partner
from study import ai_decisions
from game_logic.export_schema import AI_CALL_COLUMNS, TRUST_GAME_COLUMNS

from . import *

# Each case runs the whole session once (`otree test trust_human` runs all of them):
# send_nothing – trustors send 0 every round (the trustee has nothing to return).
# send_all     – trustors send the whole endowment; human trustees return half.
# random       – seeded random amounts and returns; in round 1 out-of-range and non-numeric amounts are
#                rejected first, with a message on the page (also ' 5 ', '٥', 20 digits).
# timeouts     – round 1: the trustor's send page times out; round 2: the human trustee's return page does.
#                Both are flagged in the data and shown on the results page, and count as 0.
CASES = ['send_nothing', 'send_all', 'random', 'timeouts']
# Refused as well (a form error on the field): what Python's int() would take but is not a plain ASCII
# whole number, and a number beyond any session's bound (once stored unchecked: an OverflowError)
NOT_PLAIN_NUMBERS = ('\u0665', ' 5 ', '+5', '1_000')
TOO_BIG = '1' * 20

# What the trustor must be told, written out here independently of the app's badge logic.
EXPECTED_LABEL = {
    ('ai', 'disclosed'): 'AI',
    ('ai', 'hidden'): None,
    ('ai', 'false_label'): 'Human',
    ('human', 'disclosed'): 'Human',
    ('human', 'hidden'): None,
    ('human', 'false_label'): 'AI',
}

# What the trustor's instructions say the partner is, per label shown.
INSTRUCTIONS_SAY = {
    'AI': 'the trustee, is an AI agent',
    'Human': 'the trustee, is another participant',
    None: 'you will not be told which',
}


def intended_send(case: str, session_code: str, participant_code: str, round_number: int, endowment: int) -> int:
    """What a trustor bot submits (the timeouts case submits this too, but it must not count)."""
    if case == 'send_nothing':
        return 0
    if case in ('send_all', 'timeouts'):
        return endowment
    # round 1 sends at least 1, so a human trustee has a return page to try bad input on
    low = min(1, endowment) if round_number == 1 else 0
    return random.Random(f'{session_code}-{participant_code}-r{round_number}-send').randint(low, endowment)


def sent_that_counts(case, session_code, participant_code, round_number, endowment) -> int:
    if case == 'timeouts' and round_number == 1:
        return 0
    return intended_send(case, session_code, participant_code, round_number, endowment)


def human_return(case: str, session_code: str, round_number: int, received: int) -> int:
    """What a human-trustee bot returns, from what it received (0 when its page times out)."""
    if case == 'timeouts' and round_number == 2:
        return 0
    if case == 'random':
        return random.Random(f'{session_code}-r{round_number}-{received}-return').randint(0, received)
    return received // 2


def return_times_out(case: str, round_number: int, partner: str) -> bool:
    """The timeouts case times out the human trustee's return page in round 2 (an AI's return never, but
    for the leak harness's mirror, which times out where the human does)."""
    return case == 'timeouts' and round_number == 2 and partner == 'human'


def expected_ai_return(bot, round_number: int, sent: int) -> int:
    """The AI trustee's return for this trustor, round and amount.

    Scripted (the policy, or the fallback of a failed LLM call): asked directly of ai_partners.
    A real LLM answer cannot be predicted: then the stored answer, checked to be a whole number in range.
    """
    config = bot.session.config
    received = sent * config['multiplier']
    if received == 0:
        return 0
    calls = AICall.filter(group=bot.player.in_round(round_number).group)
    if len(calls) == 1 and calls[0].policy != 'scripted' and not calls[0].fallback:
        expect(0 <= int(calls[0].parsed_value) <= received, True)
        return int(calls[0].parsed_value)
    trustee = f'A{bot.participant.id_in_session}' + (f'r{round_number}' if config['rematch'] else '')
    partner = make_partner(config, f'{bot.session.code}-{trustee}')
    view = GameView(role='trustee', round_number=round_number, num_rounds=config['num_rounds'],
                    endowment=config['endowment'], multiplier=config['multiplier'])
    return partner.scripted_value('return', view, amount_sent=sent, amount_received=received,
                                  counterpart=bot.participant.code)


def expected_trustor_round(bot, round_number: int) -> tuple:
    """(sent, returned, trustor points) of this trustor bot in round_number, computed from the bots' rules."""
    config = bot.session.config
    endowment, multiplier = config['endowment'], config['multiplier']
    sent = sent_that_counts(bot.case, bot.session.code, bot.participant.code, round_number, endowment)
    if config['partner'] == 'ai':
        returned = expected_ai_return(bot, round_number, sent)
    else:
        returned = human_return(bot.case, bot.session.code, round_number, sent * multiplier) if sent else 0
    return sent, returned, endowment - sent + returned


def label_in(html: str):
    """The partner badge text on the page, or None if the page shows no badge."""
    found = re.search(r'id="partner-label">\s*([^<]*?)\s*<', html)
    return found.group(1) if found else None


class PlayerBot(Bot):
    cases = CASES

    @property
    def session(self):
        # The session row never changes during a run; reading it once per bot saves many queries.
        if not hasattr(self, '_cached_session'):
            self._cached_session = super().session
        return self._cached_session

    @property
    def player(self):
        # The bot's DB session is long-lived while pages are served in others: read what was committed.
        db.expire_all()
        return super().player

    def play_round(self):
        config = self.session.config
        if self.round_number > config['num_rounds']:
            return
        if self.round_number == 1:
            if self.player.role == C.TRUSTOR_ROLE:
                expect(INSTRUCTIONS_SAY[self.expected_label()], 'in', self.html)
            else:
                expect('You are the <b>trustee</b>', 'in', self.html)
            yield Instructions
        if self.player.role == C.TRUSTOR_ROLE:
            yield from self.send()
        elif self.group.field_maybe_none('sent_amount'):
            yield from self.give_back()
        yield from self.check_results()
        if self.round_number == config['num_rounds']:
            self.check_debrief()
            self.check_payment()

    def expected_label(self):
        return EXPECTED_LABEL[(self.session.config['partner'], self.session.config['identity'])]

    def send(self):
        config = self.session.config
        endowment = config['endowment']
        expect(label_in(self.html), self.expected_label())
        amount = intended_send(self.case, self.session.code, self.participant.code, self.round_number, endowment)
        if self.case == 'random' and self.round_number == 1:
            expect('form-control-errors', 'not in', self.html)
            yield SubmissionMustFail(Send, dict(sent_amount=endowment + 1))
            expect(f'Please enter a whole number of points from 0 to {endowment}.', 'in', self.html)
            # oTree's integer field refuses these itself, with its own message on the field
            for bad in (-1, 'abc', '', '2.5'):
                yield SubmissionMustFail(Send, dict(sent_amount=bad))
                expect('form-control-errors', 'in', self.html)
            # ...and so do these, which Python's int() would take, and numbers beyond any session's bound
            for bad in NOT_PLAIN_NUMBERS:
                yield SubmissionMustFail(Send, dict(sent_amount=bad), error_fields=['sent_amount'])
                expect('using the digits 0', 'in', self.html)
            for bad in (TOO_BIG, C.MAX_SENT + 1):
                yield SubmissionMustFail(Send, dict(sent_amount=bad), error_fields=['sent_amount'])
                expect('form-control-errors', 'in', self.html)
            expect(self.group.field_maybe_none('sent_amount'), None)
        if self.case == 'timeouts' and self.round_number == 1:
            yield Submission(Send, dict(sent_amount=amount), timeout_happened=True)
            expect(self.group.send_timed_out, True)
            expect(self.group.sent_amount, 0)
        else:
            yield Send, dict(sent_amount=amount)
            expect(self.group.send_timed_out, False)

    def give_back(self):
        config = self.session.config
        received = self.group.sent_amount * config['multiplier']
        expect(f'you received <b>{received}</b> points', 'in', self.html)
        returned = human_return(self.case, self.session.code, self.round_number, received)
        if self.case == 'random' and self.round_number == 1:
            expect('form-control-errors', 'not in', self.html)
            yield SubmissionMustFail(Return, dict(sent_back_amount=received + 1))
            expect(f'Please enter a whole number of points from 0 to {received}.', 'in', self.html)
            for bad in (-1, 'abc', ''):
                yield SubmissionMustFail(Return, dict(sent_back_amount=bad))
                expect('form-control-errors', 'in', self.html)
            for bad in NOT_PLAIN_NUMBERS:
                yield SubmissionMustFail(Return, dict(sent_back_amount=bad), error_fields=['sent_back_amount'])
                expect('using the digits 0', 'in', self.html)
            for bad in (TOO_BIG, C.MAX_RECEIVED + 1):
                yield SubmissionMustFail(Return, dict(sent_back_amount=bad), error_fields=['sent_back_amount'])
                expect('form-control-errors', 'in', self.html)
            expect(self.group.field_maybe_none('sent_back_amount'), None)
        if self.case == 'timeouts' and self.round_number == 2:
            # A half-typed value in an auto-submitted form is not a decision.
            yield Submission(Return, dict(sent_back_amount=received), timeout_happened=True)
            expect(self.group.return_timed_out, True)
        else:
            yield Return, dict(sent_back_amount=returned)

    def check_results(self):
        config = self.session.config
        group = self.group
        expect(group.settled, True)
        if self.player.role == C.TRUSTOR_ROLE:
            sent, returned, points = expected_trustor_round(self, self.round_number)
            expect(label_in(self.html), self.expected_label())
            expect(group.sent_amount, sent)
            expect(group.sent_back_amount, returned)
            expect(self.player.payoff, points)
            expect(group.trustee_payoff, sent * config['multiplier'] - returned)
            if config['partner'] == 'ai':
                calls = AICall.filter(group=group)
                expect(len(calls), 1 if sent else 0)
                for call in calls:
                    # A return not made in time counts as 0 for either kind; the call keeps the fallback's value.
                    timed_out = call.fallback_reason in ai_decisions.FALLBACK_TIMED_OUT
                    expect(0 if timed_out else int(call.parsed_value), returned)
                    expect(group.return_fallback, call.fallback)
                    if config['ai_policy'] == 'scripted':
                        expect(call.fallback, return_times_out(self.case, self.round_number, config['partner']))
                    if call.fallback:
                        expect(call.fallback_reason != '', True)
        else:
            received = group.sent_amount * config['multiplier']
            expect(self.player.payoff, received - group.sent_back_amount)
            expect(label_in(self.html), None)  # the trustee is not shown a label: its partner is a participant
        timed_out_send = self.case == 'timeouts' and self.round_number == 1
        timed_out_return = return_times_out(self.case, self.round_number, config['partner'])
        expect(group.send_timed_out, timed_out_send)
        expect(group.return_timed_out, timed_out_return)
        expect(('id="send-timed-out"' in self.html), timed_out_send)
        expect(('id="return-timed-out"' in self.html), timed_out_return)
        yield Results

    def check_payment(self):
        config = self.session.config
        if self.player.role == C.TRUSTOR_ROLE:
            expected = sum(expected_trustor_round(self, r)[2] for r in range(1, config['num_rounds'] + 1))
        else:
            expected = sum(
                p.group.sent_amount * config['multiplier'] - p.group.sent_back_amount
                for p in self.player.in_rounds(1, config['num_rounds'])
            )
        if self.player.role == C.TRUSTOR_ROLE:
            self.check_exports()
        expect(self.participant.payoff, expected)
        expect(sum(r['payoff'] for r in self.participant.exit_vars['rounds']), expected)  # the payment page's table
        money = expected * config['real_world_currency_per_point'] + config['participation_fee']
        expect(abs(float(self.participant.payoff_plus_participation_fee()) - money) < 1e-9, True)

    def check_debrief(self):
        """The exit app's debrief tells the truth about the partner; it reveals where the label did not."""
        identity = self.group.identity
        shown = self.participant.exit_vars
        expect(shown['reveal'], identity in ('hidden', 'false_label'))
        expect(shown['identity'], identity)
        if self.player.role == C.TRUSTOR_ROLE:
            truth = 'an AI agent' if self.group.partner_kind == 'ai' else 'another participant in this study'
            expect(shown['partner_was'].startswith(truth), True)

    def check_exports(self):
        """The exports, fed all of this trustor's rounds (C.NUM_ROUNDS), hold exactly the played rounds and the AI calls made."""
        config = self.session.config
        num_rounds = config['num_rounds']
        all_rounds = self.player.in_all_rounds()
        decisions = list(custom_export(all_rounds))
        expect(decisions[0], TRUST_GAME_COLUMNS)
        expect([row[1] for row in decisions[1:]], list(range(1, num_rounds + 1)))
        for row in decisions[1:]:
            record = dict(zip(TRUST_GAME_COLUMNS, row))
            sent, returned, points = expected_trustor_round(self, record['round'])
            if self.case == 'timeouts' and record['round'] == 1:  # timed-out Send: no decision, empty cells
                sent = returned = ''
            expect((record['amount_sent'], record['amount_returned'], record['trustor_payoff']), (sent, returned, points))
            expect(record['trustor_id'], self.participant.code)
            expect(record['partner_label_shown'], self.expected_label() or '')
        calls = list(custom_export_ai_calls(all_rounds))
        expect(calls[0], AI_CALL_COLUMNS)
        if config['partner'] == 'human':
            expect(len(calls), 1)
            return
        rounds_with_a_call = [
            r for r in range(1, num_rounds + 1) if expected_trustor_round(self, r)[0] > 0
        ]
        expect([row[2] for row in calls[1:]], rounds_with_a_call)
        for row in calls[1:]:
            record = dict(zip(AI_CALL_COLUMNS, row))
            expect(record['app'], 'trust_game')
            expect(record['decision'], 'return')
            expect(record['policy'], config['ai_policy'])
            timed_out = record['fallback_reason'] in ai_decisions.FALLBACK_TIMED_OUT
            if not timed_out:  # a timed-out call keeps its fallback's value; the game used 0
                expect(record['parsed_value'], expected_trustor_round(self, record['round'])[1])
            if config['ai_policy'] == 'scripted':
                expect(record['fallback'], int(return_times_out(self.case, record['round'], config['partner'])))
