"""Switch both lanes between normal and promotion settings (domain/promotion.py)."""

from __future__ import annotations

from typing import Protocol

from ..domain.promotion import LaneSettings, Mode, PromotionPlan


class EventSources(Protocol):
    def configure(self, function_name: str, queue_arn: str, settings: LaneSettings) -> None: ...


class PromotionMode:
    def __init__(
        self,
        event_sources: EventSources,
        plan: PromotionPlan,
        lanes: dict[str, tuple[str, str]],  # "inventory" | "profiles" -> (function name, queue ARN)
    ) -> None:
        self._event_sources = event_sources
        self._plan = plan
        self._lanes = lanes

    def switch(self, mode: Mode) -> dict[str, LaneSettings]:
        applied = {}
        for lane, settings in (
            ("inventory", self._plan.inventory[mode]),
            ("profiles", self._plan.profiles[mode]),
        ):
            function_name, queue_arn = self._lanes[lane]
            self._event_sources.configure(function_name, queue_arn, settings)
            applied[lane] = settings
        return applied
