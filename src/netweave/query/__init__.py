"""Query parameters of the O2-IMS list and get endpoints: filters, field selection, paging.

Pure code: parsing, matching and projection of JSON-like objects, no I/O.
"""

from netweave.query.attributes import AttributeSchema, AttributeShape, check_path, schema_of
from netweave.query.fields import FieldSelection, parse_field_selection
from netweave.query.filters import Filter, Operator, Term, parse_filter
from netweave.query.paging import PageMarkers

__all__ = [
    "AttributeSchema",
    "AttributeShape",
    "FieldSelection",
    "Filter",
    "Operator",
    "PageMarkers",
    "Term",
    "check_path",
    "parse_field_selection",
    "parse_filter",
    "schema_of",
]
