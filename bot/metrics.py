"""Prometheus metrics of the bot, kept with `prometheus_client` in a registry of their own (one
per `Metrics`, so several apps in one process don't collide): request counts by type, the
acknowledgement-latency histogram, the reporter's Slack calls, job durations, and the queue
depth read from storage at scrape time.

    metrics = Metrics()
    metrics.observe_ack("slash_command", 0.004)
    text = metrics.render(queue_depth={"todo": 3, "doing": 1})

`Counter` and `Histogram` wrap the client's own classes so that callers pass label values as
keywords (`slack_calls.inc(method="chat.update", outcome="ok")`) and can read a value back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)


class _Wrapped:
    """A client metric with label names (sorted, as they appear in the exposition)."""

    name: str
    metric: prometheus_client.Counter | prometheus_client.Histogram

    def _child(self, labels: Mapping[str, str]):  # noqa: ANN202 (the client's child type)
        return self.metric.labels(**labels) if labels else self.metric

    def _sample(self, suffix: str, labels: Mapping[str, str]) -> float | None:
        wanted = {k: str(v) for k, v in labels.items()}
        for family in self.metric.collect():
            for sample in family.samples:
                if sample.name == self.name + suffix and sample.labels == wanted:
                    return sample.value
        return None

    def render(self) -> list[str]:
        """This metric's lines of the exposition text."""
        return generate_latest(self.metric).decode().splitlines()


class Counter(_Wrapped):
    """A monotonically increasing count per label set (`name` ends in `_total`)."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (), *,
                 registry: CollectorRegistry | None = None) -> None:
        self.name = name
        self.metric = prometheus_client.Counter(name, help_text, labelnames=sorted(labels),
                                                registry=registry)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._child(labels).inc(amount)

    def value(self, **labels: str) -> float:
        """The count for these label values (0 for a label set never counted)."""
        suffix = "" if self.name.endswith("_total") else "_total"
        return self._sample(suffix, labels) or 0.0


class Histogram(_Wrapped):
    """Cumulative-bucket histogram per label set."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float],
                 labels: Sequence[str] = (), *,
                 registry: CollectorRegistry | None = None) -> None:
        self.name, self.buckets = name, tuple(sorted(buckets))
        self.metric = prometheus_client.Histogram(name, help_text, labelnames=sorted(labels),
                                                  buckets=self.buckets, registry=registry)

    def observe(self, value: float, **labels: str) -> None:
        self._child(labels).observe(value)

    def count(self, **labels: str) -> int:
        """How many values were observed with these label values."""
        return int(self._sample("_count", labels) or 0)


class _QueueDepth(Collector):
    """The `lmops_jobs` gauge from a count of jobs per status read at scrape time."""

    def __init__(self, depth: Mapping[str, int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("lmops_jobs", "Jobs in the queue by status.",
                                  labels=["status"])
        for status, n in sorted(self.depth.items()):
            gauge.add_metric([status], n)
        yield gauge


class Metrics:
    """Everything `GET /metrics` exports, in `self.registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter("lmops_slack_requests_total",
                                "Requests from Slack by type (slash_command, event, "
                                "block_actions, ...) and HTTP status of the acknowledgement.",
                                ("type", "status"), registry=reg)
        self.ack_seconds = Histogram("lmops_slack_ack_seconds",
                                     "Time from receiving a Slack request to acknowledging it.",
                                     ACK_BUCKETS, ("type",), registry=reg)
        self.slack_calls = Counter("lmops_reporter_slack_calls_total",
                                   "Web API calls of the job reporter by method and outcome.",
                                   ("method", "outcome"), registry=reg)
        self.deferred_updates = Counter("lmops_reporter_deferred_updates_total",
                                        "Status updates held back by the chat.update throttle.",
                                        registry=reg)
        self.job_seconds = Histogram("lmops_job_duration_seconds",
                                     "Run time of finished jobs (start to finish) by kind and "
                                     "status.", JOB_BUCKETS, ("kind", "status"), registry=reg)

    def observe_ack(self, kind: str, seconds: float, status: int = 200) -> None:
        """One acknowledged request of type `kind` that took `seconds`."""
        self.requests.inc(type=kind, status=str(status))
        self.ack_seconds.observe(seconds, type=kind)

    def render(self, queue_depth: Mapping[str, int] | None = None) -> str:
        """The exposition text (`CONTENT_TYPE`); `queue_depth` is the number of jobs per
        status (left out when None)."""
        text = generate_latest(self.registry)
        if queue_depth is not None:
            text += generate_latest(_QueueDepth(queue_depth))
        return text.decode()
