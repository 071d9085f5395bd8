"""Lambda event source mappings, found by function and queue, changed in place."""

from __future__ import annotations

from typing import Any

from ..domain.promotion import LaneSettings


class EventSourceNotFound(LookupError):
    pass


class LambdaEventSources:
    def __init__(self, client: Any) -> None:
        self._lambda = client

    def configure(self, function_name: str, queue_arn: str, settings: LaneSettings) -> None:
        uuid = self._mapping(function_name, queue_arn)
        changes: dict[str, Any] = {}
        if settings.batch_size is not None:
            changes["BatchSize"] = settings.batch_size
        if settings.batching_window_seconds is not None:
            changes["MaximumBatchingWindowInSeconds"] = settings.batching_window_seconds
        if settings.maximum_concurrency is not None:
            changes["ScalingConfig"] = {"MaximumConcurrency": settings.maximum_concurrency}
        if changes:
            self._lambda.update_event_source_mapping(UUID=uuid, **changes)

    def _mapping(self, function_name: str, queue_arn: str) -> str:
        request: dict[str, Any] = {"FunctionName": function_name, "EventSourceArn": queue_arn}
        while True:
            page = self._lambda.list_event_source_mappings(**request)
            for mapping in page.get("EventSourceMappings") or []:
                if mapping.get("EventSourceArn") == queue_arn:
                    return str(mapping["UUID"])
            if not page.get("NextMarker"):
                raise EventSourceNotFound(f"{function_name} has no event source for {queue_arn}")
            request["Marker"] = page["NextMarker"]
