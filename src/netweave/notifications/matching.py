"""Which inventory subscriptions an inventory event concerns.

Filter language
---------------
A subscription filter is a SOL013 filter (see :mod:`netweave.query.filters`) with ``|``
alternatives and optional ``[...]`` brackets, over the attributes of every inventory kind
plus the pseudo-attribute ``objectType``, whose value is the :class:`ObjectKind` name of
the object (``ResourcePoolInfo``, ``ResourceInfo``, ...)::

    [(eq,objectType,ResourcePoolInfo);(eq,name,edge-1)|(eq,objectType,ResourceInfo)]

A subscription without a filter matches every event.

Semantics
---------
The filter is evaluated against the *object* of the event: its wire form
(``to_wire()``) plus ``{"objectType": <kind>}``. Create events use the post state,
delete events the prior state. A **modify** event matches when the prior state *or* the
post state matches: a subscriber watching ``(eq,extensions/zone,a)`` learns that a pool
left zone ``a`` (and, symmetrically, that one entered it), instead of silently losing
track of it. A filter matches an object when all the terms of at least one alternative
match it.

Index
-----
:class:`SubscriptionIndex` avoids evaluating every filter for every event. Each
alternative is filed in a bucket:

* by kind: the ``objectType`` values its ``eq``/``in`` terms allow (the intersection when
  there are several); alternatives without such a term go to the "any kind" bucket, and
  alternatives whose ``objectType`` terms contradict each other are not filed (they can
  never match);
* within the bucket, by one ``eq`` (else ``in``) term on a top-level scalar attribute,
  under (attribute, value); alternatives without such a term go to the bucket's scan
  list, tested for every object of the bucket's kind.

Within a value bucket or scan list, alternatives that test the same remaining terms
form one group, tested once for all its subscriptions (10,000 subscriptions often share
far fewer distinct filters). An event tests the groups of the scan lists of its kind and
of "any kind", and of the (attribute, value) buckets whose value equals the object's
value of that attribute; an object whose value there is a number, bool or list (which
``eq`` compares by other rules) tests every group of that attribute with all its terms.
Subscriptions without a filter are kept apart and always match. The result equals
evaluating every filter (the unit tests compare both on random filters and events).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netweave.adapters.base import EventType, InventoryEvent
from netweave.errors import InvalidQueryError
from netweave.models.common import WireModel
from netweave.models.inventory import MODEL_OF_KIND, InventoryModel, ObjectKind, OCloudInfo
from netweave.query.attributes import AttributeSchema, AttributeShape, schema_of
from netweave.query.filters import Filter, Operator, Term, parse_filter
from netweave.store.base import SubscriptionRecord

__all__ = [
    "OBJECT_TYPE",
    "SUBSCRIPTION_FILTER_SCHEMA",
    "SubscriptionIndex",
    "event_objects",
    "filter_matches",
    "parse_subscription_filter",
    "wire_state",
]

#: the pseudo-attribute naming the kind of the object
OBJECT_TYPE = "objectType"

_KIND_NAMES: frozenset[str] = frozenset(kind.value for kind in ObjectKind)
_EQUALITY_OPS = frozenset({Operator.EQ, Operator.IN, Operator.NEQ, Operator.NIN})
_SELECTING_OPS = frozenset({Operator.EQ, Operator.IN})


def _union_schema() -> dict[str, AttributeShape]:
    """Every attribute of every kind; where kinds disagree on a shape, the laxer one wins."""
    schema: dict[str, AttributeShape] = {}
    models: list[type[WireModel]] = [*MODEL_OF_KIND.values(), OCloudInfo]
    for model in models:
        for name, shape in schema_of(model).items():
            known = schema.get(name)
            if known is None or known is AttributeShape.SCALAR:
                schema[name] = shape
            elif shape is AttributeShape.ARRAY:
                schema[name] = shape
    schema[OBJECT_TYPE] = AttributeShape.SCALAR
    return schema


#: the attributes a subscription filter may name
SUBSCRIPTION_FILTER_SCHEMA: AttributeSchema = _union_schema()


def parse_subscription_filter(text: str | None) -> Filter | None:
    """Parse a subscription filter; ``None`` (no filter) matches everything.

    Raises :class:`InvalidQueryError` (parameter ``filter``) for a syntax error, an
    attribute that no inventory kind has, or an ``objectType`` value of an equality
    operator (``eq in neq nin``) that names no kind.
    """
    if text is None:
        return None
    parsed = parse_filter(
        text, schema=SUBSCRIPTION_FILTER_SCHEMA, allow_alternatives=True, parameter="filter"
    )
    for term in parsed.terms():
        if term.path != (OBJECT_TYPE,) or term.op not in _EQUALITY_OPS:
            continue
        for value in term.values:
            if value not in _KIND_NAMES:
                raise InvalidQueryError(
                    f"unknown objectType {value!r}; expected one of "
                    + ", ".join(kind.value for kind in ObjectKind),
                    parameter="filter",
                )
    return parsed


def wire_state(model: WireModel) -> dict[str, Any]:
    """The JSON-ready wire form of an inventory object: ``to_wire()``, and the same dump for
    ``OCloudInfo`` (the state of ``CloudInfo`` events), which is no ``InventoryModel``."""
    if isinstance(model, InventoryModel):
        return model.to_wire()
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def event_objects(event: InventoryEvent) -> tuple[dict[str, Any], ...]:
    """The objects a filter is evaluated against: the post state (create), the prior
    state (delete) or both (modify), each with the ``objectType`` pseudo-attribute."""
    states: tuple[InventoryModel | None, ...]
    if event.type is EventType.MODIFY:
        states = (event.prior, event.post)
    elif event.type is EventType.DELETE:
        states = (event.prior,)
    else:
        states = (event.post,)
    kind = event.kind.value
    return tuple({**wire_state(state), OBJECT_TYPE: kind} for state in states if state is not None)


def filter_matches(parsed: Filter | None, event: InventoryEvent) -> bool:
    """The reference semantics: whether a subscription with this filter gets ``event``."""
    if parsed is None:
        return True
    return any(parsed.matches(obj) for obj in event_objects(event))


# -- the index ------------------------------------------------------------------------------

_Check = Callable[[Mapping[str, Any]], bool]


def _always(_obj: Mapping[str, Any]) -> bool:
    return True


def _conjunction(terms: tuple[Term, ...]) -> _Check:
    """A test that all ``terms`` match, without a loop for the common short cases."""
    if not terms:
        return _always
    if len(terms) == 1:
        return terms[0].matches

    def check(obj: Mapping[str, Any]) -> bool:
        for term in terms:
            if not term.matches(obj):
                return False
        return True

    return check


@dataclass(slots=True, eq=False)
class _Group:
    """The alternatives of one bucket that test the same terms, tested once for all."""

    #: the terms the group's place in the index does not already guarantee
    residual: _Check
    #: the indexed term and the residual terms, for objects whose indexed attribute is not
    #: a string (the kind is always guaranteed by the bucket)
    full: _Check
    #: alternative id -> subscription seq
    members: dict[int, int] = field(default_factory=dict)


#: the terms that identify a group within its container
_GroupKey = tuple[Term | None, frozenset[Term]]
_Groups = dict[_GroupKey, _Group]


@dataclass(slots=True)
class _Bucket:
    """The alternatives of one kind (or of any kind), grouped by the terms they test."""

    #: the groups without an indexable term, tested for every object
    scan: _Groups = field(default_factory=dict)
    #: attribute -> value -> the groups whose indexed term is eq/in that value
    by_value: dict[str, dict[str, _Groups]] = field(default_factory=dict)

    def collect(self, obj: Mapping[str, Any], matched: set[int]) -> None:
        """Add to ``matched`` the seq of every subscription with an alternative here that
        matches ``obj`` (an object of this bucket's kind)."""
        for group in self.scan.values():
            if group.residual is _always or group.residual(obj):
                matched.update(group.members.values())
        for attribute, by_value in self.by_value.items():
            value = obj.get(attribute)
            if isinstance(value, str):
                groups = by_value.get(value)
                if groups:
                    for group in groups.values():
                        if group.residual is _always or group.residual(obj):
                            matched.update(group.members.values())
            elif isinstance(value, int | float | list | tuple):
                # bools, numbers and lists have their own eq rules: evaluate every term
                for groups in by_value.values():
                    for group in groups.values():
                        if group.full(obj):
                            matched.update(group.members.values())
            # a missing attribute, null and objects fail every eq/in term


def _kinds_of(terms: tuple[Term, ...]) -> frozenset[ObjectKind] | None:
    """The kinds the ``objectType`` eq/in terms allow; None when there are none."""
    allowed: frozenset[str] | None = None
    for term in terms:
        if term.path == (OBJECT_TYPE,) and term.op in _SELECTING_OPS:
            values = frozenset(term.values)
            allowed = values if allowed is None else allowed & values
    if allowed is None:
        return None
    return frozenset(ObjectKind(value) for value in allowed if value in _KIND_NAMES)


def _index_term(terms: tuple[Term, ...]) -> Term | None:
    """The term an alternative is filed under: an eq, else an in, on a top-level scalar."""
    candidates = [
        term
        for term in terms
        if term.op in _SELECTING_OPS
        and len(term.path) == 1
        and term.path[0] != OBJECT_TYPE
        and SUBSCRIPTION_FILTER_SCHEMA.get(term.path[0]) is AttributeShape.SCALAR
    ]
    for term in candidates:
        if term.op is Operator.EQ:
            return term
    return candidates[0] if candidates else None


@dataclass(frozen=True, slots=True)
class _Filing:
    """Where one alternative was filed: enough to take it out again."""

    groups: _Groups
    key: _GroupKey
    alternative_id: int
    #: for a value bucket: the bucket, attribute and value, to drop them once empty
    bucket: _Bucket | None = None
    attribute: str = ""
    value: str = ""

    def undo(self) -> None:
        members = self.groups[self.key].members
        del members[self.alternative_id]
        if members:
            return
        del self.groups[self.key]
        if self.bucket is None or self.groups:
            return
        by_value = self.bucket.by_value[self.attribute]
        del by_value[self.value]
        if not by_value:
            del self.bucket.by_value[self.attribute]


@dataclass(slots=True)
class _Entry:
    """An indexed subscription and where its alternatives were filed."""

    record: SubscriptionRecord
    seq: int
    filed: list[_Filing] = field(default_factory=list)


class SubscriptionIndex:
    """The subscriptions, indexed for :meth:`match`; see the module docstring."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._records: dict[int, SubscriptionRecord] = {}  #: by seq
        self._match_all: dict[int, SubscriptionRecord] = {}  #: by seq
        self._kinds: dict[ObjectKind, _Bucket] = {}
        self._any_kind = _Bucket()
        self._seq = itertools.count()
        self._alternative_ids = itertools.count()
        #: True while ascending seqs are creation order (records added oldest first)
        self._seq_ordered = True
        self._latest = float("-inf")

    @classmethod
    def build(cls, records: Iterable[SubscriptionRecord]) -> SubscriptionIndex:
        """An index of ``records``; raises :class:`InvalidQueryError` for a bad filter."""
        index = cls()
        for record in records:
            index.add(record)
        return index

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, subscription_id: object) -> bool:
        return subscription_id in self._entries

    def add(self, record: SubscriptionRecord) -> None:
        """Index ``record``, replacing an indexed subscription with the same id.

        Raises :class:`InvalidQueryError` when its filter does not parse; the index is then
        unchanged.
        """
        parsed = parse_subscription_filter(record.filter)
        self.remove(record.subscription_id)
        seq = next(self._seq)
        if record.created_at < self._latest:
            self._seq_ordered = False
        self._latest = max(self._latest, record.created_at)
        entry = _Entry(record, seq)
        self._entries[record.subscription_id] = entry
        self._records[seq] = record
        if parsed is None:
            self._match_all[seq] = record
            return
        for terms in parsed.alternatives:
            self._file(entry, terms)

    def _file(self, entry: _Entry, terms: tuple[Term, ...]) -> None:
        kinds = _kinds_of(terms)
        if kinds is not None and not kinds:
            return  # contradictory objectType terms: never matches
        index_term = _index_term(terms)
        residual = tuple(
            dict.fromkeys(
                term
                for term in terms
                if term is not index_term
                and not (term.path == (OBJECT_TYPE,) and term.op in _SELECTING_OPS)
            )
        )
        key: _GroupKey = (index_term, frozenset(residual))
        with_index = residual if index_term is None else (index_term, *residual)
        buckets = (
            [self._any_kind]
            if kinds is None
            else [self._kinds.setdefault(kind, _Bucket()) for kind in sorted(kinds)]
        )
        for bucket in buckets:
            if index_term is None:
                places: list[tuple[_Groups, str]] = [(bucket.scan, "")]
            else:
                by_value = bucket.by_value.setdefault(index_term.path[0], {})
                places = [
                    (by_value.setdefault(value, {}), value)
                    for value in dict.fromkeys(index_term.values)
                ]
            for groups, value in places:
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(_conjunction(residual), _conjunction(with_index))
                alternative_id = next(self._alternative_ids)
                group.members[alternative_id] = entry.seq
                if index_term is None:
                    filing = _Filing(groups, key, alternative_id)
                else:
                    filing = _Filing(groups, key, alternative_id, bucket, index_term.path[0], value)
                entry.filed.append(filing)

    def remove(self, subscription_id: str) -> bool:
        """Forget a subscription; False if it was not indexed."""
        entry = self._entries.pop(subscription_id, None)
        if entry is None:
            return False
        del self._records[entry.seq]
        self._match_all.pop(entry.seq, None)
        for filing in entry.filed:
            filing.undo()
        return True

    def records(self) -> list[SubscriptionRecord]:
        """Every indexed subscription, in creation order."""
        return [self._records[seq] for seq in self._ordered(self._records)]

    def match(self, event: InventoryEvent) -> list[SubscriptionRecord]:
        """The subscriptions ``event`` concerns, in creation order (``created_at``, then
        the order they were added), each once."""
        matched: set[int] = set(self._match_all)
        kind_bucket = self._kinds.get(event.kind)
        buckets = (self._any_kind,) if kind_bucket is None else (kind_bucket, self._any_kind)
        for obj in event_objects(event):
            for bucket in buckets:
                bucket.collect(obj, matched)
        records = self._records
        return [records[seq] for seq in self._ordered(matched)]

    def _ordered(self, seqs: Iterable[int]) -> list[int]:
        """``seqs`` in creation order."""
        if self._seq_ordered:
            return sorted(seqs)
        records = self._records
        return sorted(seqs, key=lambda seq: (records[seq].created_at, seq))
