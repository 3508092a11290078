"""The numbers a stage reports, as the library's result objects produce them.

A stage's result object has a ``numbers()`` method returning :class:`Numbers`: one
:class:`Number` per registry key, each with a plain-English label. The rule harness
(:mod:`mydirection.runner`) writes them to ``results/numbers/<rule>.json`` with their
provenance, and the ``registry`` rule merges those files into ``results/registry.json``.

Two properties of a number are kept apart:

- ``kind`` is how it is printed (:data:`KINDS`): ``count`` (``1,234``), ``proportion``
  (``12.3%``), ``pp`` (a difference of proportions in percentage points), ``p_value``,
  ``days``, ``index`` (0-100), ``gamma``, ``seconds``, ``text`` and the plain decimals
  ``mean``, ``ratio``, ``estimate``. ``signed=False`` marks a size printed without a sign
  (a minimum detectable effect, a standard deviation).
- ``people`` says whether it counts people: only counts of people are suppressed when
  ``0 < n < threshold`` (the number of specifications, replicates or covariates is not
  personal data). ``derived_from`` names the keys a number was computed from: when one of
  them is suppressed, so is the number (``mydirection.reporting.disclosure``).

``Numbers.relation(total, parts)`` declares that the count ``total`` is the sum of the
counts ``parts`` (an attrition step: remaining before = remaining after + lost), so that
disclosure control can protect a suppressed part from subtraction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

KINDS = frozenset(
    {
        "count",
        "proportion",
        "pp",
        "mean",
        "ratio",
        "estimate",
        "p_value",
        "days",
        "index",
        "gamma",
        "seconds",
        "text",
    }
)


def _plain(value):
    if hasattr(value, "item") and not isinstance(value, str):  # NumPy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Number:
    """One reported number (see the module docstring)."""

    value: object
    kind: str
    label: str
    unit: str = ""
    people: bool = False
    derived_from: tuple[str, ...] = ()
    decimals: int | None = None
    signed: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; use one of {sorted(KINDS)}")
        if not str(self.label).strip():
            raise ValueError("every reported number needs a plain-English label")
        object.__setattr__(self, "value", _plain(self.value))
        object.__setattr__(self, "derived_from", tuple(sorted(set(self.derived_from))))

    def as_dict(self) -> dict:
        d = {"value": self.value, "kind": self.kind, "label": self.label, "unit": self.unit}
        if self.people:
            d["people"] = True
        if self.derived_from:
            d["derived_from"] = list(self.derived_from)
        if self.decimals is not None:
            d["decimals"] = self.decimals
        if not self.signed:
            d["signed"] = False
        return d


@dataclass(frozen=True)
class Figure:
    """A figure a stage drew: its key, file, caption and what it was computed from.

    ``caption`` may name registry numbers as ``{key}`` (e.g. ``{config.matching.smd_threshold}``);
    the report prints each as a linked registry number, so no number is typed into a caption.
    A figure derived from a suppressed count is withheld from the report.
    """

    key: str
    path: str
    caption: str
    derived_from: tuple[str, ...] = ()
    people: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        d = {"path": str(self.path), "caption": self.caption}
        if self.derived_from:
            d["derived_from"] = sorted(set(self.derived_from))
        return d


class Numbers(Mapping):
    """The numbers of one stage: key -> :class:`Number`, plus additive relations."""

    def __init__(self, entries: Mapping[str, Number] | None = None):
        self._entries: dict[str, Number] = dict(entries or {})
        self.relations: list[tuple[str, tuple[str, ...], str]] = []

    def __getitem__(self, key: str) -> Number:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: str, value, kind: str, label: str, **options) -> str:
        """Add one number; returns its key (handy for ``derived_from`` lists)."""
        if key in self._entries:
            raise ValueError(f"number {key!r} reported twice by one stage")
        self._entries[key] = Number(value, kind, label, **options)
        return key

    def count(self, key: str, value, label: str, unit: str = "people", **options) -> str:
        """A count of people (suppressed when small)."""
        options.setdefault("people", unit in ("people", "treated people", "comparators"))
        return self.add(
            key, None if value is None else int(value), "count", label, unit=unit, **options
        )

    def relation(self, total: str, parts: Iterable[str], prefer: str = "part") -> None:
        """Declare ``total == sum(parts)`` (counts of people). ``prefer="total"``: when a
        part must be protected, hide the total first (chains: protect upwards)."""
        self.relations.append((total, tuple(parts), prefer))

    def update(self, other: Numbers) -> None:
        for key, number in other.items():
            if key in self._entries:
                raise ValueError(f"number {key!r} reported twice by one stage")
            self._entries[key] = number
        self.relations.extend(other.relations)

    def as_dict(self) -> dict:
        return {k: self._entries[k].as_dict() for k in sorted(self._entries)}


__all__ = ["KINDS", "Figure", "Number", "Numbers"]
