"""Service logs: one JSON object per line (or readable text), secrets masked either way."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from mev_common.nats_auth import mask_secrets


class JsonFormatter(logging.Formatter):
    """One JSON object per line; structured fields come from `extra={"fields": {...}}`."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return mask_secrets(orjson.dumps(entry, default=str).decode())


class TextFormatter(logging.Formatter):
    """The readable format, with the same masking as the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(TextFormatter(f"%(asctime)s {service} %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn", "uvicorn.access", "uvicorn.error", "nats", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class LastError(logging.Handler):
    """Remembers the last ERROR log line, so `mev-bot status` can show it without log access."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.last: dict[str, Any] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = {"ts": round(record.created, 3), "msg": record.getMessage()[:200]}
