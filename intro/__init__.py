import importlib

from otree.api import *

from game_logic import society
from game_logic.payoffs import comprehension_example
from study import journey
from study.config import GameConstants, build_config, config_of, game_vars
from study.forms import CleanInputPage
from study.pages import DecisionPage, InfoPage

doc = """
The first part of every session, before any group forms: consent (text from the researcher's file,
session config consent_file), the game's rules, the comprehension check with limited attempts and an
optional attention check. Whoever does not qualify goes straight to the exit app (participation fee,
reason, Prolific screened-out URL); the qualified go on to the game app, where groups form among them.
"""


class C(BaseConstants):
    NAME_IN_URL = 'intro'
    PLAYERS_PER_GROUP = None
    NUM_ROUNDS = 1
    MAX_RECEIVED = GameConstants.MAX_RECEIVED
    # The attention check: an instructed-response item (the text says which option to pick).
    ATTENTION_CHOICES = ['Red', 'Green', 'Blue', 'Purple']
    ATTENTION_ANSWER = 'Purple'


class Subsession(BaseSubsession):
    pass


class Group(BaseGroup):
    pass


class Player(BasePlayer):
    consent = models.BooleanField(
        label='Do you agree to take part?', widget=widgets.RadioSelect,
        choices=[[True, 'I have read the information above and agree to take part.'],
                 [False, 'I do not agree to take part.']],
    )
    consent_timed_out = models.BooleanField(initial=False)
    # Filled by the consent page from the online room's URL (Prolific STUDY_ID / SESSION_ID), else ''.
    prolific_study_id = models.StringField(blank=True, initial='')
    prolific_session_id = models.StringField(blank=True, initial='')
    comp_received = models.IntegerField(min=0, max=C.MAX_RECEIVED, label='')
    comp_payoff = models.IntegerField(min=0, max=C.MAX_RECEIVED, label='')
    comp_kept = models.IntegerField(min=0, max=C.MAX_RECEIVED, label='')
    comprehension_attempts = models.IntegerField(initial=0)
    comprehension_failed = models.BooleanField(initial=False)
    attention = models.StringField(choices=C.ATTENTION_CHOICES, widget=widgets.RadioSelect, label='')
    attention_failed = models.BooleanField(initial=False)


# FUNCTIONS
def creating_session(subsession: Subsession):
    session = subsession.session
    journey.check_app_sequence(session)
    config = build_config(session, GameConstants.NUM_ROUNDS)
    # The researcher's files are read now, so a bad one fails before anyone consents.
    journey.consent_paragraphs(config, str(session.config['participation_fee']))
    journey.remember_items(session, config)
    for pp in session.get_participants():
        pp.excluded, pp.exclusion_reason, pp.dropped, pp.played = False, '', False, False


def game_module(player: Player):
    return importlib.import_module(journey.game_app(player.session))


def rules_vars(player: Player) -> dict:
    """What the game's rules.html needs before groups and roles exist (the game app says it)."""
    game = journey.game_app(player.session)
    return dict(game_vars(player), rules_template=f'{game}/rules.html',
                **game_module(player).rules_before_grouping(player))


def comprehension(player: Player):
    """The worked example; its right answers do not depend on the role (not known before grouping)."""
    config = config_of(player)
    return (comprehension_example(config.endowment, config.multiplier, True),
            comprehension_example(config.endowment, config.multiplier, False))


def leave_if_excluded(player: Player, upcoming_apps):
    return journey.leave_if_out(player, upcoming_apps)


# PAGES
class Consent(InfoPage):
    form_model = 'player'
    form_fields = ['consent', 'prolific_study_id', 'prolific_session_id']
    app_after_this_page = staticmethod(leave_if_excluded)

    @staticmethod
    def vars_for_template(player: Player):
        return dict(paragraphs=journey.consent_paragraphs(config_of(player),
                                                          str(player.session.config['participation_fee'])))

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        pp = player.participant
        for field in ('prolific_study_id', 'prolific_session_id'):
            value = society.clean_external_id(player.field_maybe_none(field) or '')
            setattr(player, field, value)
            setattr(pp, field, value)
        # No consent, no participation: an idle consent page is not consent.
        if timeout_happened:
            player.consent_timed_out = True
            player.consent = False
        if not player.consent:
            journey.exclude(pp, 'no_consent')


class Rules(InfoPage):
    vars_for_template = rules_vars


class Comprehension(CleanInputPage, DecisionPage):
    """A wrong answer costs an attempt; at the last one it lets the participant through (routed out).
    Malformed input (not plain digits, out of bounds) is a form error and costs nothing, also at the last."""

    form_model = 'player'
    form_fields = ['comp_received', 'comp_payoff', 'comp_kept']
    app_after_this_page = staticmethod(leave_if_excluded)

    @staticmethod
    def vars_for_template(player: Player):
        sender, receiver = comprehension(player)
        left = config_of(player).comprehension_max_attempts - player.comprehension_attempts
        return dict(rules_vars(player), attempts_left=left, example=sender, kept=receiver.payoff)

    @staticmethod
    def error_message(player: Player, values):
        max_attempts = config_of(player).comprehension_max_attempts
        sender, receiver = comprehension(player)
        words = game_module(player).rules_before_grouping(player)
        wrong = [what for what, given, right in (
            (f'how many points the {words["receiver_word"]} receives', values['comp_received'], sender.received),
            (f"the {words['sender_word']}'s points", values['comp_payoff'], sender.payoff),
            (f"what the {words['receiver_word']} keeps", values['comp_kept'], receiver.payoff),
        ) if given != right]
        if not wrong:
            return
        player.comprehension_attempts += 1
        if player.comprehension_attempts >= max_attempts:
            player.comprehension_failed = True
            return  # let them through to the exit app instead of looping forever
        return f"Not quite: check {' and '.join(wrong)}. Attempts left: {max_attempts - player.comprehension_attempts}."

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        if timeout_happened or player.comprehension_failed:
            player.comprehension_failed = True
            journey.exclude(player.participant, 'comprehension_failed')


class AttentionCheck(DecisionPage):
    form_model = 'player'
    form_fields = ['attention']
    app_after_this_page = staticmethod(leave_if_excluded)

    @staticmethod
    def is_displayed(player: Player):
        return config_of(player).attention_check

    @staticmethod
    def vars_for_template(player: Player):
        return dict(answer=C.ATTENTION_ANSWER)

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        if timeout_happened or player.attention != C.ATTENTION_ANSWER:
            player.attention_failed = True
            journey.exclude(player.participant, 'attention_failed')


page_sequence = [Consent, Rules, Comprehension, AttentionCheck]
