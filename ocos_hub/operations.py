"""Operations: the request types a client may send, core ones and plugin ones alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt

if TYPE_CHECKING:
    from ocos_hub.session import Session

RequestId = Annotated[str, Field(max_length=64)] | StrictInt


class Request(BaseModel):
    """Base of every request model. Fields a type does not list are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: str = Field(description="The request type.")
    id: RequestId | None = Field(
        None, description="Echoed verbatim in the reply: a string of at most 64 characters "
        "or an integer.")


@dataclass
class Ack:
    """An operation's success: the ack's fields, and work to do right after the ack is queued.

    `then` runs synchronously after the ack, so frames it queues (a replay) follow the ack
    and precede anything else on the connection.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    then: Callable[[], None] | None = None
    reply_type: str = "ack"  # `ping` answers with `pong`


class Operation(ABC):
    """A request type (`history`, `topics`, ...). Extension plugins return these from
    `ocos_operations`; the core's own requests are built the same way."""

    name: ClassVar[str]
    request_model: ClassVar[type[Request]] = Request
    # The ack's own fields, for the generated docs only (the core never validates a reply).
    reply_model: ClassVar[type[BaseModel] | None] = None

    def required_scope(self, request: Request) -> str | None:
        """The scope the principal needs for this request (None: anyone may send it)."""
        return None

    @abstractmethod
    async def __call__(self, session: Session, request: Any) -> Ack | dict[str, Any]:
        """Handle a validated request; raise `HubError` to refuse it."""
