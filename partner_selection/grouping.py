"""How partner_selection's groups form and keep their roles and treatment: from the session's participants
(lab) or by arrival time (online). Uses the app's models, so the app imports it after defining them.

Remainder policy (session config `remainder`): participants who cannot fill a group (lab: the last chunk when
the participants are not a multiple of the group size; arrival: whoever still waits after
arrival_max_wait_seconds) either play as a smaller group flagged `incomplete` (`smaller_group`) or form no
group and leave (`leave`: excluded, `exclusion_reason` = `left_over`, payment page only, participation fee).
Treatments rotate over complete groups only: the complete groups take the rotation in order, and a smaller
group gets the treatment the next complete group would get, without using up that slot (lab: the remainder
is the last group, so it is simply the next in the rotation; arrival: `ps_groups_formed` counts complete
groups only)."""
import time

from game_logic import society
from study.config import config_of
from study.journey import peek

from . import C, Group, Player, Subsession

LEFT_OVER = 'left_over'  # participant.exclusion_reason of those who cannot fill a group (remainder = leave)


def set_up_group(group: Group, index: int):
    """Roles (selectors first) and the group's treatment, kept for the whole session.

    index: the group's place in the treatment rotation (1-based, complete groups first; see the module doc).
    With `remainder = leave` a smaller group gets no roles and no treatment: its participants leave."""
    config = config_of(group)
    players = group.get_players()
    group.incomplete = len(players) < config.group_size
    if group.incomplete and config.remainder == 'leave':
        send_away(group)
        return
    group.treatment = society.treatment_for_group(index, config.treatment_rotation)
    # The AI-candidate mix rotates with the same index as the treatment (a list of one: every group).
    group.ai_composition = society.treatment_for_group(index, config.composition_rotation)
    human_ids = iter(society.candidate_ids(len(players), 0)['human'])
    for player, role in zip(players, society.assign_roles(len(players), config.num_selectors)):
        pp = player.participant
        pp.ps_role = role
        pp.treatment = group.treatment
        pp.candidate_id = next(human_ids) if role == C.CANDIDATE else ''
        copy_role(player)


def send_away(group: Group):
    """Participants who cannot fill a group: excluded (reason left_over), no role, the payment page only."""
    group.treatment = ''
    for player in group.get_players():
        pp = player.participant
        pp.excluded, pp.exclusion_reason = True, LEFT_OVER
        pp.ps_role, pp.treatment, pp.candidate_id = '', '', ''
        copy_role(player)


def is_left_over(player: Player) -> bool:
    return peek(player.participant, 'exclusion_reason') == LEFT_OVER


def copy_group_setup(source: Group, group: Group):
    group.treatment = source.treatment
    group.ai_composition = source.ai_composition
    group.incomplete = source.incomplete
    for player in group.get_players():
        copy_role(player)


def copy_role(player: Player):
    pp = player.participant
    player.ps_role = pp.ps_role
    player.treatment = pp.treatment
    player.candidate_id = pp.candidate_id


def form_lab_groups(subsession: Subsession):
    """Lab grouping, once everybody has qualified or left (LabGroupingWaitPage): the qualified in
    participant order, groups of group_size (the remainder policy for the rest); those routed out in the
    intro app sit in one group of their own that never plays. The same groups in every round."""
    config = config_of(subsession)
    players = sorted(subsession.get_players(), key=lambda p: p.participant.id_in_session)
    qualified = [p.id_in_subsession for p in players if not peek(p.participant, 'excluded')]
    out = [p.id_in_subsession for p in players if peek(p.participant, 'excluded')]
    matrix = society.split_into_groups(qualified, config.group_size) if qualified else []
    matrix = matrix + ([out] if out else [])
    for round_number in range(1, config.num_rounds + 1):
        subsession.in_round(round_number).set_group_matrix(matrix)
    for index, group in enumerate(subsession.get_groups()[:len(matrix) - bool(out)], start=1):
        set_up_group(group, index)
        for later in group.in_rounds(2, config.num_rounds) if config.num_rounds > 1 else []:
            copy_group_setup(group, later)


def group_by_arrival_time_method(subsession: Subsession, waiting_players):
    """A full group as soon as enough people wait; after arrival_max_wait_seconds, whoever is there."""
    config = config_of(subsession)
    if len(waiting_players) >= config.group_size:
        return waiting_players[:config.group_size]
    limit = config.arrival_max_wait_seconds
    now = time.time()
    if limit and any(now - p.participant.arrived_at >= limit for p in waiting_players):
        return waiting_players


def set_up_arrived_group(group: Group):
    session = group.session
    index = session.vars.get('ps_groups_formed', 0) + 1
    if len(group.get_players()) >= config_of(group).group_size:
        session.ps_groups_formed = index  # complete groups only: a smaller one takes no rotation slot
    set_up_group(group, index)
    for later in group.in_rounds(2, config_of(group).num_rounds) if config_of(group).num_rounds > 1 else []:
        copy_group_setup(group, later)
