"""Configuration: TOML files, environment overrides, validation with precise messages.

Every value can be overridden by an environment variable named after its path:
`OCOS_HUB__SERVER__PORT=9000`, `OCOS_HUB__PLUGINS__JWT__SECRET=...`. Values are read as
TOML values when they parse as one (`9000`, `true`, `["a", "b"]`), else as strings.
Secret fields accept `env:NAME` or `file:/path` to keep secrets out of the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError

ENV_PREFIX = "OCOS_HUB__"
PROFILES = Path(__file__).with_name("profiles")


class ConfigError(Exception):
    """A configuration the hub refuses to start with; the message names file, section, field."""


def _resolve_secret(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    if isinstance(value, str) and value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    return value


# A string that may be given as `env:NAME` or `file:/path` instead of inline.
Secret = Annotated[str, BeforeValidator(_resolve_secret)]


class Section(BaseModel):
    """Base of every config section: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", strict=False, validate_default=True)


class ServerConfig(Section):
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8765, ge=0, le=65535, description="TCP port to listen on.")
    ws_path: str = Field("/ws", pattern=r"^/", description="Path of the WebSocket endpoint.")
    heartbeat: float = Field(
        30.0, gt=0, description="Seconds between WebSocket pings; no answer within the next "
        "interval closes the connection."
    )
    max_message_bytes: int = Field(
        65536, ge=256, description="Largest inbound frame; larger ones close with 1009."
    )
    send_buffer_bytes: int = Field(
        1 << 20, ge=4096, description="Outgoing bytes a connection may have queued before it "
        "is closed as a slow consumer (4008)."
    )
    max_subscriptions: int = Field(100, ge=1, description="Subscriptions per connection.")
    shutdown_grace: float = Field(
        5.0, ge=0, description="Seconds given to connections to drain at shutdown before "
        "they are closed with 1001."
    )
    docs: bool = Field(
        True, description="Serve the documents generated from the enabled plugins: `/docs`, "
        "`/asyncapi.json`, `/openapi.json`, `/schema.graphql`."
    )


class AccessConfig(Section):
    anonymous: list[str] = Field(
        default_factory=list, description="Scopes granted to connections without credentials."
    )
    require_auth: bool = Field(
        False, description="Refuse handshakes and API calls without credentials (HTTP 401)."
    )


class HistoryConfig(Section):
    max_events: int = Field(10_000, ge=1, description="Events retained per topic.")
    max_age: float = Field(3600.0, gt=0, description="Seconds an event is retained.")
    max_replay: int = Field(
        100_000, ge=1, description="Most events sent after a `since` or `rewind`."
    )


class PublishConfig(Section):
    dedup_window: float = Field(
        300.0, ge=0, description="Seconds during which a repeated `key` publishes nothing."
    )
    dedup_max_keys: int = Field(100_000, ge=1, description="Keys remembered for dedup.")
    max_batch: int = Field(1000, ge=1, description="Events in one `POST /api/v1/events`.")


class PluginsConfig(BaseModel):
    """`enabled` lists plugin names; each `[plugins.<name>]` table is that plugin's section."""

    model_config = ConfigDict(extra="allow")

    enabled: list[str] = Field(default_factory=list, description="Plugins to load, by name.")

    def section(self, name: str) -> dict[str, Any]:
        raw = (self.model_extra or {}).get(name, {})
        return dict(raw) if isinstance(raw, Mapping) else raw

    def sections(self) -> list[str]:
        return list(self.model_extra or {})


class HubConfig(Section):
    """The whole configuration. `source` names where it came from, for error messages."""

    server: ServerConfig = ServerConfig()
    access: AccessConfig = AccessConfig()
    history: HistoryConfig = HistoryConfig()
    publish: PublishConfig = PublishConfig()
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    _source: str = PrivateAttr("<defaults>")

    @property
    def source(self) -> str:
        return self._source


def describe_error(source: str, exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """`file: [section] field: problem` for each error of a pydantic validation."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(str(part) for part in err["loc"])
        tables = [part for part in loc[:-1] if not part.isdigit()]
        section = f"[{'.'.join(tables)}] " if tables else ""
        field = loc[-1] if loc else ""
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        got = err.get("input")
        if err["type"] not in ("extra_forbidden", "missing") and not isinstance(got, dict):
            message += f" (got {got!r})"
        lines.append(f"{source}: {section}{field}: {message}")
    return "\n".join(lines)


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay `OCOS_HUB__SECTION__KEY` variables on the parsed file."""
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if not path:
            continue
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = _parse_env_value(raw)
    return data


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `over` onto `base` (tables merge, other values replace)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    path: str | Path | None = None,
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HubConfig:
    """Read a config: a built-in profile, then the file, then the environment, then overrides."""
    data: dict[str, Any] = {}
    sources = []
    if profile:
        profile_path = PROFILES / f"{profile}.toml"
        if not profile_path.exists():
            raise ConfigError(f"no built-in profile {profile!r}")
        data = read_toml(profile_path)
        sources.append(f"profile {profile}")
    if path is not None:
        data = merge(data, read_toml(Path(path)))
        sources.append(str(path))
    data = apply_env(data, os.environ if environ is None else environ)
    data = merge(data, overrides or {})
    return parse_config(data, " + ".join(sources) or "<defaults>")


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> HubConfig:
    """Validate a config mapping; a `ConfigError` says what is wrong and where."""
    try:
        config = HubConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_error(source, exc)) from None
    config._source = source
    return config
