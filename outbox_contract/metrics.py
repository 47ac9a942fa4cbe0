"""Queue gauges read from the database at scrape time, the same in every process.

How many rows wait, and for how long, is a fact of the outbox table, not of
one process: a counter kept in memory would differ per replica and vanish with
it. :class:`QueueCollector` asks the ``outbox_summary`` view (migration 0002)
at each scrape instead, so every signup worker and every mailer replica
reports the same truth, and the backlog stays visible while no mailer runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from outbox_contract.database import first_line
from outbox_contract.summary import read_summary

logger = logging.getLogger(__name__)


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    """Return the empty metric families the collector fills."""
    return (
        GaugeMetricFamily(
            "outbox_rows",
            "Outbox rows by status, read from the database at scrape time.",
            labels=["status"],
        ),
        GaugeMetricFamily(
            "outbox_oldest_due_age_seconds",
            "Seconds the oldest due pending row has waited; 0 when none is due.",
        ),
        GaugeMetricFamily(
            "outbox_database_up",
            "1 if the outbox_summary query answered at this scrape, else 0.",
        ),
    )


class QueueCollector(Collector):
    """Yields ``outbox_rows{status}`` and ``outbox_oldest_due_age_seconds``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterable[Metric]:
        """Name the families without querying (registration must not touch the DB)."""
        return _families()

    def collect(self) -> Iterator[Metric]:
        """Run the summary query once and yield its gauges."""
        rows_family, oldest, up = _families()
        try:
            with self.engine.connect() as connection:
                summary = read_summary(connection)
        except SQLAlchemyError as err:
            # One scrape fails and the process metrics still go out with it. The
            # driver's first line names the problem; a traceback per scrape
            # (every 15 s while the database is down) would bury the log.
            logger.warning(
                "outbox_summary query failed: %s",
                first_line(err),
                extra={"action": "metrics_scrape_failed"},
            )
            up.add_metric([], 0)
            yield up
            return
        for row in summary:
            rows_family.add_metric([row["status"]], row["total"])
            if row["status"] == "pending":
                oldest.add_metric([], row["oldest_due_age_seconds"] or 0)
        up.add_metric([], 1)
        yield from (rows_family, oldest, up)


class RegistryView(Collector):
    """Shows the metrics of another registry (the process's default one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        """Yield everything the viewed registry collects."""
        return self.registry.collect()


def queue_registry(engine: Engine, *collectors: Collector) -> CollectorRegistry:
    """Return a registry with ``collectors`` and the queue gauges of ``engine``."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    registry.register(QueueCollector(engine))
    return registry
