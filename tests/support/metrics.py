"""Read Prometheus metrics the way a scraper does: from the text exposition."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families


def samples(exposition: bytes | str) -> dict[tuple[str, frozenset], float]:
    """Return every sample of an exposition by (name, labels)."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(exposition: bytes | str, name: str, **labels: str) -> float | None:
    """Return one sample's value from an exposition, or None if absent."""
    return samples(exposition).get((name, frozenset(labels.items())))


def family_names(exposition: bytes | str) -> set[str]:
    """Return the metric family names an exposition declares (# TYPE lines)."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


class Delta:
    """Counts what a block adds to this process's default registry samples."""

    def __init__(self, *names: tuple[str, dict[str, str]]) -> None:
        self.names = names
        self.before = [self._value(n, labels) for n, labels in names]

    @staticmethod
    def _value(name: str, labels: dict[str, str]) -> float:
        """Return the current value of one sample (0 when absent)."""
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def __call__(self) -> list[float]:
        """Return how much each sample grew since construction."""
        return [
            self._value(n, labels) - before
            for (n, labels), before in zip(self.names, self.before, strict=True)
        ]
