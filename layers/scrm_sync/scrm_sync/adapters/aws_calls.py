"""One way for adapters to call AWS: botocore's errors become the adapter's own "unavailable"
error naming what failed (the service's error code, or the client-side error's type), so use
cases never see botocore."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


def aws_call(client: Any, operation: str, unavailable: type[Exception], **kwargs: Any) -> Any:
    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as exc:
        raise unavailable(error_code(exc)) from exc
    except BotoCoreError as exc:
        raise unavailable(type(exc).__name__) from exc
