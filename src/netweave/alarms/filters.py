"""Alarm subscription filters: which alarm events a subscriber is sent.

Both forms found in the wild are accepted:

* the LATEST edition's enumeration: ``NEW``, ``CHANGE``, ``CLEAR`` or ``ACKNOWLEDGE``
  (netweave also accepts several, comma-separated: ``NEW,CLEAR``), matching the
  notification type;
* a SOL013 filter (as the O-RAN SC tests send), over the attributes of the
  AlarmEventRecord after the event plus the pseudo-attribute ``notificationEventType``
  (0 NEW, 1 CHANGE, 2 CLEAR, 3 ACKNOWLEDGE); ``|`` separates alternatives as in inventory
  subscription filters: ``(eq,perceivedSeverity,0)|(eq,notificationEventType,2)``.

Like the inventory's, the filter selects what is sent (both O2-IMS implementations read
the spec's "events which do not need to be reported" that way); no filter sends all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netweave.errors import InvalidQueryError
from netweave.models.alarms import AlarmEventRecord, AlarmEventType
from netweave.query import AttributeShape, Filter, parse_filter, schema_of

__all__ = ["EVENT_TYPE_ATTRIBUTE", "FILTER_SCHEMA", "AlarmFilter", "parse_alarm_filter"]

EVENT_TYPE_ATTRIBUTE = "notificationEventType"
FILTER_SCHEMA = schema_of(AlarmEventRecord, extra={EVENT_TYPE_ATTRIBUTE: AttributeShape.SCALAR})


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    """A parsed filter; :meth:`matches` never raises."""

    event_types: frozenset[AlarmEventType] | None = None
    expression: Filter | None = None

    def matches(self, record: Mapping[str, Any], event_type: AlarmEventType) -> bool:
        """Whether the event ``event_type`` leaving the record ``record`` (wire) is sent."""
        if self.event_types is not None and event_type not in self.event_types:
            return False
        if self.expression is not None:
            return self.expression.matches({**record, EVENT_TYPE_ATTRIBUTE: int(event_type)})
        return True


def parse_alarm_filter(text: str | None) -> AlarmFilter:
    """Parse a subscription's filter; raises :class:`~netweave.errors.InvalidQueryError`
    (400, parameter ``filter``) when it is neither form."""
    if text is None or not text.strip():
        return AlarmFilter()
    names = [part.strip().upper() for part in text.split(",")]
    if all(name in AlarmEventType.__members__ for name in names):
        return AlarmFilter(event_types=frozenset(AlarmEventType[name] for name in names))
    if "(" not in text:  # meant as notification types: say which are known
        unknown = ", ".join(name for name in names if name not in AlarmEventType.__members__)
        raise InvalidQueryError(
            f"unknown notification type(s) in filter: {unknown or text!r}; expected NEW, "
            "CHANGE, CLEAR or ACKNOWLEDGE (comma-separated), or a SOL013 filter",
            parameter="filter",
        )
    expression = parse_filter(
        text, schema=FILTER_SCHEMA, allow_alternatives=True, parameter="filter"
    )
    return AlarmFilter(expression=expression)
