"""Who plays with whom in the trust game (assigned partner), as oTree group matrices. No oTree import.

Participants are numbered 1..N in session order (oTree's id_in_subsession). With a human trustee, the
first participant of each consecutive pair is the trustor and keeps that role for the whole session.
With an AI trustee, every participant is a trustor alone in a group; the AI lives on the server.
"""
from typing import List

from .session_config import PARTNER_KINDS


class MatchingError(ValueError):
    """The participants cannot be matched as configured; the message says why and what would work."""


def trust_group_matrix(num_participants: int, round_number: int, partner: str, rematch: bool) -> List[List[int]]:
    """oTree group matrix for one round of the trust game.

    partner='ai': [[1], [2], …] (each trustor alone; the AI trustee is not a participant).
    partner='human': [[trustor, trustee], …]; trustors are 1, 3, 5, …, trustees 2, 4, 6, ….
    Round 1 pairs 1–2, 3–4, …; with rematch, round r shifts the trustees by r − 1 pairs (a rotation),
    so no trustor meets the same trustee twice within as many rounds as there are pairs.
    Without rematch the pairs of round 1 are kept. Raises MatchingError on an odd count for humans.
    """
    if isinstance(num_participants, bool) or not isinstance(num_participants, int) or num_participants < 1:
        raise MatchingError(f'the number of participants must be a positive whole number, got {num_participants!r}')
    if isinstance(round_number, bool) or not isinstance(round_number, int) or round_number < 1:
        raise MatchingError(f'round_number must be a positive whole number, got {round_number!r}')
    if partner not in PARTNER_KINDS:
        raise MatchingError(f"partner must be one of {PARTNER_KINDS}, got {partner!r}")
    if partner == 'ai':
        return [[i] for i in range(1, num_participants + 1)]
    if num_participants % 2:
        options = [n for n in (num_participants - 1, num_participants + 1) if n > 0]
        raise MatchingError(
            f"partner='human' pairs a trustor with a trustee, so it needs an even number of participants, "
            f"got {num_participants}; use {' or '.join(map(str, options))}"
        )
    num_pairs = num_participants // 2
    shift = (round_number - 1) % num_pairs if rematch else 0
    return [[2 * k + 1, 2 * ((k + shift) % num_pairs) + 2] for k in range(num_pairs)]
