"""Prometheus metrics of one backend: operations by status, durations, queue depth, HTTP latency.

Each app owns its registry (no process-global state), so several apps can live in one test process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from backend.domain.operations import Operation, OperationStatus
from backend.services.operations import OperationsService

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _OperationsCollector(Collector):
    """Reads the counts at scrape time, so they are right after a restart and across backends."""

    def __init__(self, operations: OperationsService, running_here: Callable[[], int]) -> None:
        self._operations = operations
        self._running_here = running_here

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._operations.count_by_status()
        by_status = GaugeMetricFamily("modelyard_operations", "Operations by status", labels=["status"])
        for status in OperationStatus:
            by_status.add_metric([status.value], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "modelyard_queue_depth",
            "Pending operations waiting to run",
            value=counts.get(OperationStatus.PENDING, 0),
        )
        yield GaugeMetricFamily(
            "modelyard_local_trainings_running",
            "Trainings running in this process",
            value=self._running_here(),
        )


class Telemetry:
    def __init__(self, operations: OperationsService, running_here: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_OperationsCollector(operations, running_here))
        self._latency_children: dict[tuple[str, str, int], Any] = {}
        self.http_latency = Histogram(
            "modelyard_http_request_duration_seconds",
            "HTTP request latency by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.operation_duration = Histogram(
            "modelyard_operation_duration_seconds",
            "Time from start to end of finished operations, by final status",
            ["type", "status"],
            registry=self.registry,
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
        )

        self.auth_failures = Counter(
            "modelyard_auth_failures",
            "Requests refused by API token checks, by reason (missing, malformed, unknown, expired, "
            "revoked, forbidden, not_loopback)",
            ["reason"],
            registry=self.registry,
        )

    def observe_auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def observe_terminal(self, op: Operation) -> None:
        if op.started_at is not None and op.completed_at is not None:
            seconds = (op.completed_at - op.started_at).total_seconds()
            self.operation_duration.labels(op.type, op.status.value).observe(max(seconds, 0.0))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled child is looked up once per (method, route, status): ``labels`` takes a lock and
        # builds its key on every call, a measurable share of a cached poll answer's CPU.
        key = (method, route, status)
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children.setdefault(
                key, self.http_latency.labels(method, route, str(status))
            )
        child.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
