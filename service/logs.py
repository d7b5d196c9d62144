"""JSON logs: one object per line, with the request id where there is one."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

# uvicorn logs its start, stop and lifecycle under `uvicorn.error` whatever their level, so an
# info line would read as an error to anyone filtering by logger name
LOGGER_NAMES = {"uvicorn.error": "uvicorn"}


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg"}, plus the `fields` dict a record carries (extra=)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": LOGGER_NAMES.get(record.name, record.name),
        }
        out["msg"] = record.getMessage()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out |= fields
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn and the service: JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "weightgen": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }
