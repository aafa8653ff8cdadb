"""Optional OpenTelemetry traces: one trace per cycle (root span "cycle"), child spans from the rooms.

Off by default. With settings.tracing.otlp_endpoint set, spans go to an
OTLP/HTTP collector (Jaeger, Phoenix, ...). Tests pass an exporter (the SDK's
InMemorySpanExporter). The rooms only call opentelemetry.trace.get_tracer(),
so their spans join the current cycle's trace through the context.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from config.settings import Settings

log = logging.getLogger("selfpub.tracing")
TRACER_NAME = "selfpub.daemon"


def setup_tracing(settings: Settings, exporter: SpanExporter | None = None) -> trace.Tracer | None:
    """Install a tracer provider exporting to OTLP/HTTP (or `exporter`); None when tracing is off.

    The global provider can be set only once per process: later calls add
    their exporter to the provider already installed.
    """
    endpoint = settings.tracing.otlp_endpoint
    if exporter is None and not endpoint:
        return None
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url))
    else:
        processor = SimpleSpanProcessor(exporter)
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        current.add_span_processor(processor)
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({
            "service.name": settings.tracing.service_name, "selfpub.persona": settings.persona}))
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
    log.info("tracing on", extra={"exporter": "otlp-http" if exporter is None else type(exporter).__name__})
    return provider.get_tracer(TRACER_NAME)


def shutdown_tracing() -> None:
    """Flush and stop the exporters (at exit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
