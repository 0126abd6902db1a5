from otree.api import Bot, Submission, SubmissionMustFail, expect

from study import journey

from . import *

# Cases line up with the game apps' (oTree runs case k of every app together):
# normal    – consent, rules, right answers.
# bad_input – every kind of invalid submission is rejected first (costing no attempt where malformed).
# timeouts  – (case 3) as many participants as keep the rest in complete groups (participants mod group
#             size) are routed out: the 2nd refuses consent, the 3rd fails the comprehension check, the 4th
#             the attention check (when on); they go straight to the exit app.
CASES = ['normal', 'bad_input', 'timeouts']

# Not a plain whole number in range, though Python's int() takes them (a form error each)
NOT_PLAIN_NUMBERS = ('\u0665', ' 5 ', '+5', '1_000')
TOO_BIG = '1' * 20  # once an OverflowError (HTTP 500) on the last comprehension attempt


def group_size(config: dict) -> int:
    if journey.game_app_name(config) == 'partner_selection':
        return config['num_selectors'] + config['num_human_candidates']
    return 2 if config['partner'] == 'human' else 1


def routed_out(bot) -> str:
    """The exclusion this bot's participant acts out in the timeouts case ('' = none)."""
    config = bot.session.config
    if bot.case != 'timeouts':
        return ''
    count = len(bot.session.get_participants()) % group_size(config)
    plan = ['no_consent', 'comprehension_failed', 'attention_failed' if config['attention_check'] else '']
    index = bot.participant.id_in_session - 2
    return plan[index] if 0 <= index < count else ''


class PlayerBot(Bot):
    cases = CASES

    def play_round(self):
        config = self.session.config
        out = routed_out(self)
        if self.case == 'bad_input':
            yield SubmissionMustFail(Consent)  # neither agreeing nor refusing
        if out == 'no_consent':
            yield Consent, dict(consent=False)
            expect(self.participant.exclusion_reason, 'no_consent')
            return
        yield Consent, dict(consent=True)
        yield Rules
        sender, receiver = comprehension(self.player)
        right = dict(comp_received=sender.received, comp_payoff=sender.payoff, comp_kept=receiver.payoff)
        # the answers are worked out here from the rules, not read from the app
        expect(sender.received, config['endowment'] * config['multiplier'])
        expect(receiver.payoff, sender.received - sender.returned)
        expect(sender.payoff, sender.returned)
        if self.case == 'bad_input':
            yield SubmissionMustFail(Comprehension, dict(right, comp_received='abc'))
            yield SubmissionMustFail(Comprehension, dict(right, comp_received=right['comp_received'] + 1))
            expect('Attempts left', 'in', self.html)
            for bad in NOT_PLAIN_NUMBERS:
                yield SubmissionMustFail(Comprehension, dict(right, comp_payoff=bad), error_fields=['comp_payoff'])
                expect('using the digits 0', 'in', self.html)
            for bad in (TOO_BIG, -1, C.MAX_RECEIVED + 1):
                yield SubmissionMustFail(Comprehension, dict(right, comp_kept=bad), error_fields=['comp_kept'])
            expect(self.player.comprehension_attempts, 1)
        if out == 'comprehension_failed':
            wrong = dict(right, comp_kept=right['comp_kept'] + 1)
            for _ in range(config['comprehension_max_attempts'] - 1):
                yield SubmissionMustFail(Comprehension, wrong)
            # the last attempt lets a wrong answer through, never a malformed one
            for bad in (TOO_BIG, '\u0665'):
                yield SubmissionMustFail(Comprehension, dict(wrong, comp_received=bad), error_fields=['comp_received'])
            expect(self.player.comprehension_failed, False)
            yield Comprehension, wrong
            expect(self.participant.exclusion_reason, 'comprehension_failed')
            return
        yield Comprehension, right
        if config['attention_check']:
            if self.case == 'bad_input':
                yield SubmissionMustFail(AttentionCheck, dict(attention='Orange'))
            yield AttentionCheck, dict(attention='Red' if out == 'attention_failed' else C.ATTENTION_ANSWER)
            if out == 'attention_failed':
                expect(self.participant.exclusion_reason, 'attention_failed')
                return
        # qualified (later, groups may leave someone over: that is the game app's remainder policy)
        expect(self.participant.exclusion_reason in ('', 'left_over'), True)
