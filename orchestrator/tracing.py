"""OpenTelemetry tracing through API → workflow → activities (`tracing` setting).

Temporal's TracingInterceptor, registered on the client, makes spans for the
signal-with-start the API sends and carries the trace context in Temporal headers, so the
workflow's and the activities' spans join the same trace on the worker. Off by default:
each span costs a little of the time-to-contain budget.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from temporalio.contrib.opentelemetry import TracingInterceptor

from orchestrator.config import Settings

SERVICE_NAME = "bulkhead"


def tracer_provider(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider:
    """A provider exporting to `exporter` (tests), the console, or OTLP over HTTP."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.tracing == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif settings.tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
        )
    return provider


def interceptors(settings: Settings, provider: TracerProvider | None = None) -> list[Any]:
    """Client interceptors for `connect`; none when tracing is off."""
    if settings.tracing == "off" and provider is None:
        return []
    provider = provider or tracer_provider(settings)
    return [TracingInterceptor(provider.get_tracer(SERVICE_NAME))]
