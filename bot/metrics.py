"""Prometheus metrics of the bot, written in the text exposition format by hand (no client
library needed): request counts by type, the acknowledgement-latency histogram, the reporter's
Slack calls, job durations, and the queue depth read from storage at scrape time.

    metrics = Metrics()
    metrics.observe_ack("slash_command", 0.004)
    text = metrics.render(queue_depth={"todo": 3, "doing": 1})
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = (*labels, *extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Histogram:
    """Cumulative-bucket histogram per label set (thread-safe)."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help, self.buckets = name, help_text, tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts, totals = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            totals[0] += value

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(tuple(sorted(labels.items())))
            return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for labels, (counts, totals) in sorted(self._series.items()):
                running = 0
                for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                    running += n
                    le = (("le", _number(bound)),)
                    lines.append(f"{self.name}_bucket{_labels(labels, le)} {running}")
                lines.append(f"{self.name}_sum{_labels(labels)} {_number(totals[0])}")
                lines.append(f"{self.name}_count{_labels(labels)} {running}")
        return lines


class Counter:
    """A monotonically increasing count per label set (thread-safe)."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._lock = threading.Lock()
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            lines += [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self._values.items())]
        return lines


class Metrics:
    """Everything `GET /metrics` exports."""

    def __init__(self) -> None:
        self.requests = Counter("lmops_slack_requests_total",
                                "Requests from Slack by type (slash_command, event, "
                                "block_actions, ...) and HTTP status of the acknowledgement.")
        self.ack_seconds = Histogram("lmops_slack_ack_seconds",
                                     "Time from receiving a Slack request to acknowledging it.",
                                     ACK_BUCKETS)
        self.slack_calls = Counter("lmops_reporter_slack_calls_total",
                                   "Web API calls of the job reporter by method and outcome.")
        self.deferred_updates = Counter("lmops_reporter_deferred_updates_total",
                                        "Status updates held back by the chat.update throttle.")
        self.job_seconds = Histogram("lmops_job_duration_seconds",
                                     "Run time of finished jobs (start to finish) by kind and "
                                     "status.", JOB_BUCKETS)

    def observe_ack(self, kind: str, seconds: float, status: int = 200) -> None:
        """One acknowledged request of type `kind` that took `seconds`."""
        self.requests.inc(type=kind, status=str(status))
        self.ack_seconds.observe(seconds, type=kind)

    def render(self, queue_depth: Mapping[str, int] | None = None) -> str:
        """The exposition text; `queue_depth` is the number of jobs per status."""
        lines: list[str] = []
        for metric in (self.requests, self.ack_seconds, self.slack_calls, self.deferred_updates,
                       self.job_seconds):
            lines += metric.render()
        if queue_depth is not None:
            lines += ["# HELP lmops_jobs Jobs in the queue by status.", "# TYPE lmops_jobs gauge"]
            lines += [f'lmops_jobs{{status="{_escape(s)}"}} {n}' for s, n in
                      sorted(queue_depth.items())]
        return "\n".join(lines) + "\n"
