"""Plugin discovery and loading: a typed facade over one pluggy manager per app.

Plugins are found by entry point (group `ocos_hub`); only those named in
`[plugins] enabled` are imported. Each hook is called per plugin with the plugin's own
validated config section, so a plugin never sees another's settings.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from ocos_hub import hookspecs
from ocos_hub.config import ConfigError, HubConfig, describe_error

GROUP = "ocos_hub"


@dataclass(frozen=True)
class InstalledPlugin:
    name: str
    value: str
    distribution: str
    version: str


def installed_plugins() -> dict[str, InstalledPlugin]:
    """Every plugin an installed distribution declares, by name, without importing any."""
    found: dict[str, InstalledPlugin] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = ep.dist
        found.setdefault(
            ep.name,
            InstalledPlugin(
                ep.name,
                ep.value,
                dist.metadata["Name"] if dist else "?",
                dist.version if dist else "?",
            ),
        )
    return found


class PluginHost:
    """The enabled plugins of one app, their configs, and per-plugin hook calls.

    `extra` registers plugin objects directly (tests, embedding); they take part exactly
    like entry-point plugins, under the name given.
    """

    def __init__(self, config: HubConfig, extra: Sequence[tuple[str, object]] = ()) -> None:
        self.config = config
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.order: list[str] = []
        self._load(config.plugins.enabled, dict(extra))
        self.configs: dict[str, Any] = {name: self._plugin_config(name) for name in self.order}

    def _load(self, enabled: Iterable[str], extra: dict[str, object]) -> None:
        installed = installed_plugins()
        source = self.config.source
        for name in enabled:
            if name in self.order:
                raise ConfigError(f"{source}: [plugins] enabled: {name!r} is listed twice")
            if name in extra:
                plugin = extra[name]
            elif name in installed:
                plugin = self._import(name, installed[name])
            else:
                known = ", ".join(sorted(set(installed) | set(extra))) or "none"
                raise ConfigError(
                    f"{source}: [plugins] enabled: unknown plugin {name!r} (installed: {known})"
                )
            self.pm.register(plugin, name=name)
            self.order.append(name)
        # A plugin names the plugins it cannot work without in `ocos_requires`.
        for name in self.order:
            for needed in getattr(self.pm.get_plugin(name), "ocos_requires", ()):
                if needed not in self.order:
                    raise ConfigError(f"{source}: [plugins] enabled: {name!r} needs the "
                                      f"{needed!r} plugin; enable it too")
        for section in self.config.plugins.sections():
            if section not in installed and section not in extra:
                raise ConfigError(
                    f"{source}: [plugins.{section}]: no installed plugin is named {section!r}"
                )

    def _import(self, name: str, plugin: InstalledPlugin) -> object:
        for ep in importlib.metadata.entry_points(group=GROUP, name=name):
            try:
                return ep.load()
            except Exception as exc:  # a broken plugin must not look like a config typo
                raise ConfigError(
                    f"plugin {name!r} ({plugin.value}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        raise ConfigError(f"plugin {name!r} vanished while loading")

    def _plugin_config(self, name: str) -> Any:
        section = self.config.plugins.section(name)
        models: list[type[BaseModel] | None] = [
            impl.function()  # type: ignore[misc]
            for impl in self.pm.hook.ocos_config_model.get_hookimpls()
            if impl.plugin_name == name
        ]
        model = models[0] if models else None
        if model is None:
            if section:
                raise ConfigError(
                    f"{self.config.source}: [plugins.{name}]: plugin {name!r} takes no options"
                )
            return None
        try:
            return model.model_validate(section)
        except ValidationError as exc:
            raise ConfigError(
                describe_error(self.config.source, exc, ("plugins", name))
            ) from None

    def each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call `hook` on every enabled plugin implementing it, in `enabled` order, each with
        its own `config`; return `(plugin name, result)` for results that are not None."""
        impls = {impl.plugin_name: impl for impl in getattr(self.pm.hook, hook).get_hookimpls()}
        results = []
        for name in self.order:
            impl = impls.get(name)
            if impl is None:
                continue
            args = {"config": self.configs[name], **kwargs}
            result = impl.function(*(args[arg] for arg in impl.argnames))
            if result is not None:
                results.append((name, result))
        return results

    def collect(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Flatten list-returning registration hooks into `(plugin name, item)` pairs."""
        return [(name, item) for name, items in self.each(hook, **kwargs) for item in items]

    def single(self, hook: str, what: str, **kwargs: Any) -> Any:
        """The one non-None result of `hook`, or None; two providers are a config error."""
        results = self.each(hook, **kwargs)
        if len(results) > 1:
            names = ", ".join(name for name, _ in results)
            raise ConfigError(f"{self.config.source}: [plugins] enabled: only one {what} may "
                              f"be enabled, got {names}")
        return results[0][1] if results else None
