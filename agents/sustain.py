"""The sustain rule applied to a cycle: how many items, and which model each role calls.

    rule = SustainRule(journal, settings.sustain, clock)     built by daemon/ (wiring_agents.py)
    state = rule.refresh()          the orchestrator, once per cycle at planning (a ledger read,
                                    never a model call: an idle cycle costs nothing)
    rule.items(normal)              conserve: min(normal, conserve_items_per_cycle)
                                    expand:   max(normal, expand_items_per_cycle)
                                    normal:   normal (research.items_per_cycle)
    rule.model(role)                the router: the tier's model for the role when [sustain] names
                                    one, else None (the role's own model and runway tiers)

The state is read once per cycle and held, so a cycle plans and calls under one tier even when
its own spend moves the ratio. The arithmetic is ledger/sustain.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from config.settings import SustainSettings
from kernel.clock import utcnow
from ledger.journal import Journal
from ledger.sustain import CONSERVE, EXPAND, SustainState, sustain_state


class SustainRule:
    """The tier in force for the current cycle, read from the ledger and applied to the plan and the models."""

    def __init__(self, journal: Journal, settings: SustainSettings, clock: Callable[[], datetime] = utcnow):
        self.journal = journal
        self.settings = settings
        self.clock = clock
        self._state: SustainState | None = None

    @property
    def state(self) -> SustainState:
        """The tier in force (read now when no cycle has read it yet)."""
        return self._state if self._state is not None else self.refresh()

    def refresh(self) -> SustainState:
        """Read income and cost over the window now and hold the tier for this cycle."""
        self._state = sustain_state(self.journal, self.settings, now=self.clock())
        return self._state

    def items(self, normal: int) -> int:
        """Items per cycle under the tier in force, given the normal number (research.items_per_cycle)."""
        tier = self.state.tier
        if tier == CONSERVE:
            return min(normal, self.settings.conserve_items_per_cycle)
        if tier == EXPAND:
            return max(normal, self.settings.expand_items_per_cycle)
        return normal

    def model(self, role: str) -> str | None:
        """The role's model under the tier in force, when [sustain] names one; None: the role's own."""
        tier = self.state.tier
        if tier == CONSERVE:
            return self.settings.conserve_models.get(role)
        if tier == EXPAND:
            return self.settings.expand_models.get(role)
        return None


__all__ = ["SustainRule"]
