"""structlog JSON to stderr; one line per event, secrets never passed in."""

from __future__ import annotations

import logging
import sys


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the moment of writing.

    Binding the stream object once breaks when it is swapped and closed later (pytest's
    capture, a daemon redirecting its output): every later log line would then fail.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", *, structured: bool = True) -> None:
    """Route stdlib logging to stderr at `level`, and structlog as JSON lines.

    `structured=False` leaves structlog alone: importing it (and the rich tracebacks it
    pulls in) costs a short-lived CLI command about a fifth of its run, and a command
    that never imports structlog has nothing to configure.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    stream = _CurrentStderr()
    root = logging.getLogger()
    root.handlers = [logging.StreamHandler(stream)]
    root.setLevel(numeric)
    # Libraries that narrate every packet at INFO would drown incident events.
    for noisy in ("pymodbus", "temporalio", "uvicorn.access", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    # The lab's OPC UA server warns that its loopback endpoint is unencrypted, by design.
    logging.getLogger("asyncua").setLevel(max(numeric, logging.ERROR))
    if not structured:
        return
    import structlog  # noqa: PLC0415 - see the docstring

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
