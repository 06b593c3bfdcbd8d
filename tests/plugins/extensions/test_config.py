"""The extension plugins load by name, start with no section, and document every option."""

from __future__ import annotations

import importlib

import pytest
from pydantic import BaseModel

from ocos_hub.app import create_app
from ocos_hub.config import ConfigError, parse_config
from ocos_hub.plugins import installed_plugins
from tests.ticks import TicksPlugin

NAMES = ("replay", "filters", "history")


@pytest.mark.parametrize("name", NAMES)
def test_every_option_has_a_default_and_a_description(name: str) -> None:
    module = importlib.import_module(installed_plugins()[name].value)
    model: type[BaseModel] = module.ocos_config_model()
    assert model.model_fields
    for field_name, field in model.model_fields.items():
        assert field.description, f"[plugins.{name}] {field_name} has no description"
        assert not field.is_required(), f"[plugins.{name}] {field_name} has no default"
    model.model_validate({})


@pytest.mark.parametrize("name", NAMES)
def test_each_starts_alone_and_refuses_unknown_options(name: str) -> None:
    config = parse_config({"plugins": {"enabled": ["ticks", name]}})
    create_app(config, plugins=[("ticks", TicksPlugin())])
    bad = parse_config({"plugins": {"enabled": ["ticks", name], name: {"colour": "red"}}})
    with pytest.raises(ConfigError, match=rf"\[plugins.{name}\] colour: unknown key"):
        create_app(bad, plugins=[("ticks", TicksPlugin())])
