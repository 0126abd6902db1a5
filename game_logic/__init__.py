"""Pure game logic shared by the oTree apps: payoffs and matching. No oTree import here,
so everything is unit-testable outside a session."""
from .payoffs import InvalidAmount, TrustOutcome, trust_outcome, validate_return, validate_sent

__all__ = ['InvalidAmount', 'TrustOutcome', 'trust_outcome', 'validate_return', 'validate_sent']
