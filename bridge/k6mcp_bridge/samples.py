"""The internal form of a k6 sample, and the public message made from it on demand.

Internal: every stage may import it (decoders make it, the aggregation and the group tree read
it, delivery turns it into messages); plugins never see it.

Decoders (JSON fast path, JSON slow path, CSV) all produce :class:`PointRecord`; the
aggregation reads it directly. A :class:`~.messages.PointMessage` is built from it only when
some enabled plugin accepts ``point`` messages (:func:`point_message`), once per sample, and the
same frozen object goes to every such plugin. Metric definitions are rare and stay
:class:`~.messages.MetricMessage` all the way.

Times are validated by pydantic-core's own validator of ``Point.time`` (:data:`validate_time`),
so a record's time is, by construction, the value the public model would hold: truncated to the
microsecond, with pydantic's ``TzInfo`` offset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from pydantic_core import SchemaValidator

from .messages import AnyMessage, MetricMessage, Point, PointMessage, Tags


class PointRecord(msgspec.Struct, gc=False):
    """One sample: ``metric`` is the parent metric's name, ``time`` as the model holds it."""

    metric: str
    value: float
    tags: Tags | None
    metadata: Tags | None
    time: datetime


Decoded = MetricMessage | PointRecord
"""What the decoders produce and the aggregation consumes."""


def _field_schema(model: type[Any], name: str) -> Any:
    schema = model.__pydantic_core_schema__
    while schema["type"] in ("definitions", "model"):
        schema = schema["schema"]
    return schema["fields"][name]["schema"]


validate_time: Callable[[Any], datetime] = SchemaValidator(
    _field_schema(Point, "time"), Point.__pydantic_core_schema__.get("config")
).validate_python
"""``Point.time``'s validator: a ``str`` is parsed as in JSON (raises ``ValueError``)."""

_new = object.__new__
_set = object.__setattr__
_POINT_FIELDS = {
    (tags, metadata): frozenset(
        [
            "metric",
            "time",
            "value",
            *(["tags"] if tags else []),
            *(["metadata"] if metadata else []),
        ]
    )
    for tags in (False, True)
    for metadata in (False, True)
}
_DATA_FIELDS = frozenset({"data"})


def _model(cls: type[Any], values: dict[str, Any], fields_set: frozenset[str]) -> Any:
    """What ``cls.model_construct(**values)`` makes, without its per-field loop: the values are
    already valid (they come from a validated record), so only the instance is assembled."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(fields_set))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def point_message(record: PointRecord) -> PointMessage:
    """The message ``validate_k6_record`` gives for the record's line (equal in every field)."""
    tags, metadata = record.tags, record.metadata
    values = {
        "metric": record.metric,
        "time": record.time,
        "value": record.value,
        "tags": tags,
        "metadata": metadata,
    }
    data = _model(Point, values, _POINT_FIELDS[tags is not None, metadata is not None])
    message: PointMessage = _model(PointMessage, {"type": "point", "data": data}, _DATA_FIELDS)
    return message


def record_of(message: PointMessage) -> PointRecord:
    """A point the slow path validated, in the internal form."""
    data = message.data
    return PointRecord(data.metric, data.value, data.tags, data.metadata, data.time)


def messages_of(records: Sequence[Decoded], points: bool) -> list[AnyMessage]:
    """A batch as plugins see it: every point as its message (``points``), or none."""
    if points:
        return [
            point_message(r) if type(r) is PointRecord else cast(MetricMessage, r) for r in records
        ]
    return [cast(MetricMessage, r) for r in records if type(r) is not PointRecord]
