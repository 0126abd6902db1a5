from otree.api import Bot, SubmissionMustFail, expect

from game_logic import questionnaire
from study import journey

from . import *

CASES = ['normal', 'bad_input', 'timeouts']  # lined up with the other apps' cases


def answer(item) -> str:
    """A valid answer to every kind of item."""
    if item.kind in ('integer', 'scale'):
        return str((item.low + item.high) // 2)
    if item.kind == 'choice':
        return item.choices[-1]
    return 'I looked at the messages <b>and</b> the returns.'


class PlayerBot(Bot):
    cases = CASES

    def play_round(self):
        pp = self.participant
        config = self.session.config
        if played(self.player):
            yield from self.questionnaire()
            expect('Debriefing', 'in', self.html)
            yield Debrief
        else:
            # routed out before the game: the reason, the participation fee, nothing earned
            expect(pp.payoff, 0)
            expect(journey.EXCLUSION_REASONS[pp.exclusion_reason], 'in', self.html)
            expect(pp.payoff_plus_participation_fee(), config['participation_fee'])
        expect('Payment', 'in', self.html)
        expect(str(pp.payoff_plus_participation_fee()), 'in', self.html)
        # Prolific: who played gets the completion URL, who was routed out before the game the screened-out one
        completion, screened = config['prolific_completion_url'], config['prolific_screened_out_url']
        url = screened if (screened and not played(self.player)) else completion
        if url:
            expect(f'href="{url}"', 'in', self.html.replace('&amp;', '&'))

    def questionnaire(self):
        if not config_of(self.player).questionnaire:
            return
        shown = items_for(self.player)
        data = {field: answer(item) for field, item in shown}
        if self.case == 'bad_input':
            for field, item in shown:
                bad = {'integer': str(item.high + 1) if item.high else 'x', 'scale': '0', 'choice': 'Other',
                       'text': 'x' * ((item.high or 1) + 1)}[item.kind]
                yield SubmissionMustFail(Questionnaire, dict(data, **{field: bad}), error_fields=[field])
            required = [field for field, item in shown if item.required]
            if required:
                yield SubmissionMustFail(Questionnaire, {k: v for k, v in data.items() if k != required[0]},
                                         error_fields=[required[0]])
        yield Questionnaire, data
        player = self.player
        expect(player.questionnaire_items, ';'.join(item.name for _, item in shown))
        for field, item in shown:
            expect(player.field_maybe_none(field), questionnaire.check_answer(item, data[field])[0])
        # the undisclosed treatments ask who was an AI before the debrief reveals it; the others do not
        names = [item.name for _, item in shown]
        undisclosed_selector = (self.participant.journey_identity in ('hidden', 'false_label')
                                and self.participant.journey_role == 'selector')
        if 'suspected_ai' in [i.name for i in journey.session_items(player)]:
            expect('suspected_ai' in names, undisclosed_selector)
