from otree.api import *

from game_logic import export_schema, questionnaire
from study import journey
from study.config import build_config, config_of, GameConstants
from study.export import config_cells
from study.forms import CleanInputPage
from study.pages import InfoPage
from study.text import escape_text

doc = """
The last part of every session: the post-study questionnaire (items from the researcher's file, session
config questionnaire_file; for those who played), the debrief (the game's own text, after the
questionnaire so that guesses about who was an AI come first) and the payment page (participation fee,
points, the reason for anyone routed out, the Prolific completion or screened-out URL).
"""


class C(BaseConstants):
    NAME_IN_URL = 'exit'
    PLAYERS_PER_GROUP = None
    NUM_ROUNDS = 1
    MAX_ITEMS = questionnaire.MAX_ITEMS


class Subsession(BaseSubsession):
    pass


class Group(BaseGroup):
    pass


def _answer_field():
    return models.LongStringField(blank=True, initial='')


class Player(BasePlayer):
    questionnaire_items = models.StringField(initial='', doc='names of the items this participant was shown')
    questionnaire_timed_out = models.BooleanField(initial=False)


# One answer field per questionnaire item position (q_1 … q_30); the item file says what each holds.
for _i in range(1, C.MAX_ITEMS + 1):
    setattr(Player, f'q_{_i}', _answer_field())


# FUNCTIONS
def creating_session(subsession: Subsession):
    build_config(subsession.session, GameConstants.NUM_ROUNDS)


def played(player: Player) -> bool:
    return bool(player.participant.vars.get('played'))


def items_for(player: Player) -> list:
    """(form field, item) pairs this participant answers: by game role and identity treatment."""
    pp = player.participant
    role = 'selector' if pp.vars.get('journey_role') == 'selector' else 'candidate'
    identity = pp.vars.get('journey_identity', '')
    items = journey.session_items(player)
    return [(f'q_{i}', item) for i, item in enumerate(items, start=1) if questionnaire.shown(item, role, identity)]


# PAGES
class Questionnaire(CleanInputPage, InfoPage):
    """Timed like an information page (info_page_timeout_seconds): a dozen items take longer than a decision."""

    form_model = 'player'

    @staticmethod
    def is_displayed(player: Player):
        return played(player) and config_of(player).questionnaire and bool(items_for(player))

    @staticmethod
    def get_form_fields(player: Player):
        return [field for field, _ in items_for(player)]

    @staticmethod
    def vars_for_template(player: Player):
        rows = []
        for field, item in items_for(player):
            rows.append(dict(field=field, name=item.name, kind=item.kind, text=escape_text(item.text),
                             choices=[escape_text(c) for c in item.choices], low=item.low, high=item.high,
                             required=item.required, steps=list(range(item.low, item.high + 1))
                             if item.kind == 'scale' else [],
                             left=escape_text(item.choices[0]) if item.kind == 'scale' else '',
                             right=escape_text(item.choices[-1]) if item.kind == 'scale' else '',
                             value=escape_text(player.field_maybe_none(field) or '')))
        return dict(items=rows)

    @staticmethod
    def error_message(player: Player, values):
        errors = {}
        for field, item in items_for(player):
            _, error = questionnaire.check_answer(item, values.get(field))
            if error:
                errors[field] = error
        return errors or None

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        player.questionnaire_timed_out = timeout_happened
        shown = items_for(player)
        player.questionnaire_items = ';'.join(item.name for _, item in shown)
        for field, item in shown:
            value, error = questionnaire.check_answer(item, player.field_maybe_none(field))
            setattr(player, field, '' if error else value)  # a timed-out form keeps only valid answers


class Debrief(InfoPage):
    @staticmethod
    def is_displayed(player: Player):
        return played(player)

    @staticmethod
    def vars_for_template(player: Player):
        pp = player.participant
        game = journey.game_app(player.session)
        return dict(pp.vars.get('exit_vars', {}), debrief_template=f'{game}/debrief.html')


class Payment(InfoPage):
    @staticmethod
    def vars_for_template(player: Player):
        pp = player.participant
        config = config_of(player)
        game = journey.game_app(player.session)
        reason = pp.vars.get('exclusion_reason') or ('dropped' if pp.vars.get('dropped') else '')
        # Prolific: who played (dropped players too) gets the completion URL; who was routed out before the
        # game (no consent, failed checks, left over) the screened-out URL, or the completion URL if none is set.
        url = config.prolific_completion_url
        if not played(player) and config.prolific_screened_out_url:
            url = config.prolific_screened_out_url
        return dict(
            pp.vars.get('exit_vars', {}),
            points=pp.payoff,
            money_from_points=pp.payoff.to_real_world_currency(player.session),
            participation_fee=player.session.config['participation_fee'],
            total=pp.payoff_plus_participation_fee(),
            played=played(player),
            reason=journey.EXCLUSION_REASONS.get(reason, ''),
            details_template=f'{game}/payment_details.html',
            completion_url=escape_text(url),
        )


page_sequence = [Questionnaire, Debrief, Payment]


# EXPORTS
def custom_export(players):
    """Questionnaire: one row per participant who answered it (columns: ids, then one per item name)."""
    rows = [p for p in players if p.questionnaire_items]
    names = []
    for p in rows:
        for name in p.questionnaire_items.split(';'):
            if name not in names:
                names.append(name)
    yield [*export_schema.QUESTIONNAIRE_COLUMNS, *names]
    for p in rows:
        items = journey.session_items(p)
        answers = {item.name: p.field_maybe_none(f'q_{i}') or '' for i, item in enumerate(items, start=1)}
        shown = set(p.questionnaire_items.split(';'))
        cells = config_cells(p)
        yield [p.session.code, p.participant.code, p.participant.label or '', cells['config_name'],
               cells['config_id'], p.participant.vars.get('journey_role', ''),
               p.participant.vars.get('journey_identity', ''), int(p.questionnaire_timed_out),
               *[answers.get(n, '') if n in shown else '' for n in names]]
