"""How partner_selection's groups form and keep their roles and treatment: from the session's participants
(lab) or by arrival time (online). Uses the app's models, so the app imports it after defining them."""
import time

from game_logic import society
from study.config import config_of

from . import C, Group, Player, Subsession


def set_up_group(group: Group, index: int):
    """Roles (selectors first) and the group's treatment, kept for the whole session."""
    config = config_of(group)
    group.treatment = society.treatment_for_group(index, config.treatment_rotation)
    players = group.get_players()
    group.incomplete = len(players) < config.group_size
    human_ids = iter(society.candidate_ids(len(players), 0)['human'])
    for player, role in zip(players, society.assign_roles(len(players), config.num_selectors)):
        pp = player.participant
        pp.ps_role = role
        pp.treatment = group.treatment
        pp.candidate_id = next(human_ids) if role == C.CANDIDATE else ''
        copy_role(player)


def copy_group_setup(source: Group, group: Group):
    group.treatment = source.treatment
    group.incomplete = source.incomplete
    for player in group.get_players():
        copy_role(player)


def copy_role(player: Player):
    pp = player.participant
    player.ps_role = pp.ps_role
    player.treatment = pp.treatment
    player.candidate_id = pp.candidate_id


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
    session.ps_groups_formed = session.vars.get('ps_groups_formed', 0) + 1
    set_up_group(group, session.ps_groups_formed)
    for later in group.in_rounds(2, config_of(group).num_rounds) if config_of(group).num_rounds > 1 else []:
        copy_group_setup(group, later)
