"""Topics: named event streams whose kinds, filters and access rules a plugin declares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ocos_hub.errors import HubError, first_field, validation_details

if TYPE_CHECKING:
    from ocos_hub.auth import Principal
    from ocos_hub.broker import Event


class TopicFilter(BaseModel):
    """Base of a topic's `filter` object. Unknown fields are refused.

    Subclasses declare the catalog's filter fields and implement `matches`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def matches(self, event: Event) -> bool:
        """True when the event passes this filter. Called for live and replayed events alike."""
        raise NotImplementedError


# Decides, per event, whether a principal (None when anonymous) may receive it.
Visibility = Callable[["Principal | None", "Event"], bool]


@dataclass(frozen=True)
class Topic:
    """A topic as a plugin declares it.

    `kinds` maps each event kind (`block.new`) to the pydantic model of its `data`.
    `examples` maps kinds to example `data` objects, used by the docs and tests.
    `visible` narrows delivery per event (the identity topic); None means every
    subscriber with the `subscribe:<topic>` scope receives every event.
    """

    name: str
    kinds: Mapping[str, type[BaseModel]]
    filter_model: type[TopicFilter] | None = None
    description: str = ""
    examples: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    visible: Visibility | None = None

    def validate_data(self, kind: str, data: Any) -> dict[str, Any]:
        """`data` checked against the kind's model and normalised to its JSON form."""
        model = self.kinds.get(kind)
        if model is None:
            raise HubError(
                "unknown_event",
                f"topic {self.name!r} has no event kind {kind!r}",
                {"topic": self.name, "event": kind, "kinds": sorted(self.kinds)},
            )
        try:
            return model.model_validate(data).model_dump(mode="json")
        except ValidationError as exc:
            raise HubError(
                "invalid_event",
                f"{self.name} {kind}: invalid data at {first_field(exc) or 'data'}",
                validation_details(exc),
            ) from None

    def parse_filter(self, raw: Any) -> TopicFilter | None:
        """A client's `filter` object validated by the topic's filter model."""
        if raw is None:
            return None
        if self.filter_model is None:
            raise HubError("invalid_filter", f"topic {self.name!r} declares no filter fields")
        try:
            return self.filter_model.model_validate(raw)
        except ValidationError as exc:
            field_name = first_field(exc)
            raise HubError(
                "invalid_filter",
                f"filter field {field_name!r}: {exc.errors()[0]['msg']}",
                {"field": field_name, "errors": validation_details(exc)},
            ) from None

    def schema(self) -> dict[str, Any]:
        """The topic's kinds and filter as JSON Schemas (for `/api/v1/topics` and the docs)."""
        return {
            "name": self.name,
            "description": self.description,
            "events": {kind: model.model_json_schema() for kind, model in self.kinds.items()},
            "filter": self.filter_model.model_json_schema() if self.filter_model else None,
            "examples": dict(self.examples),
        }
