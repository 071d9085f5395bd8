"""HttpApi Lambda authorizer for /events and /profiles (REQUEST, payload 2.0, simple responses).

API Gateway calls it with the X-Api-Key header as identity source and caches the answer per key
for the authorizer's TTL (ReauthorizeEvery), so most requests never reach this function. The
keys are the `api.keys` entry of the channels secret; the comparison is the domain's
(`ApiKeys.caller_for`, constant time). An error here (the secret unreadable) fails closed: API
Gateway answers 500 and lets nothing through.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from scrm_sync.bootstrap import credentials
from scrm_sync.entrypoints.http import CALLER_CONTEXT_KEY, presented_key
from scrm_sync.entrypoints.logging import pii_safe_logger

logger = pii_safe_logger()


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerEventV2)
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    caller = credentials().api.caller_for(presented_key(event.headers))
    if caller is None:
        # never the key itself: the route and request id are enough to find the attempt
        logger.warning(
            "API key refused",
            extra={"route": event.route_key, "request_id": event.request_context.request_id},
        )
        return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
    logger.info("API key accepted", extra={"caller": caller, "route": event.route_key})
    return APIGatewayAuthorizerResponseV2(authorize=True, context={CALLER_CONTEXT_KEY: caller}).asdict()
