"""Configuration: precise refusals, environment overrides, secrets, the CLI around them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocos_hub.config import ConfigError, Secret, load_config
from ocos_hub.hub import Hub
from ocos_hub.plugins import PluginHost


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def refusal(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        config = load_config(path, environ=environ or {})
        Hub(config, PluginHost(config))
    return str(caught.value)


def test_defaults_without_a_file() -> None:
    config = load_config(environ={})
    assert (config.server.host, config.server.port, config.server.ws_path) == (
        "127.0.0.1", 8765, "/ws")
    assert config.plugins.enabled == [] and config.access.anonymous == []


def test_operator_config_reads(tmp_path: Path) -> None:
    path = write(tmp_path, """
[server]
host = "0.0.0.0"
port = 9001
heartbeat = 10
[access]
anonymous = ["subscribe:blocks"]
""")
    config = load_config(path, environ={})
    assert config.server.host == "0.0.0.0" and config.server.port == 9001
    assert config.server.heartbeat == 10.0
    assert config.access.anonymous == ["subscribe:blocks"]


def test_wrong_type_names_file_section_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = "eighty"\n')
    message = refusal(path)
    assert str(path) in message and "[server] port" in message and "'eighty'" in message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    message = refusal(write(tmp_path, "[server]\nprot = 80\n"))
    assert "[server] prot: unknown key" in message


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    assert "bogus: unknown key" in refusal(write(tmp_path, "[bogus]\nx = 1\n"))


def test_unknown_plugin_is_refused(tmp_path: Path) -> None:
    message = refusal(write(tmp_path, '[plugins]\nenabled = ["warp-drive"]\n'))
    assert "[plugins] enabled: unknown plugin 'warp-drive'" in message
    assert "installed:" in message


def test_section_for_a_plugin_nobody_installed(tmp_path: Path) -> None:
    message = refusal(write(tmp_path, "[plugins.warp-drive]\nspeed = 9\n"))
    assert "[plugins.warp-drive]" in message


def test_invalid_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in refusal(write(tmp_path, "[server\n"))


def test_missing_file(tmp_path: Path) -> None:
    assert "no such config file" in refusal(tmp_path / "nope.toml")


def test_environment_overrides_every_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9001\n")
    config = load_config(path, environ={
        "OCOS_HUB__SERVER__PORT": "9100",
        "OCOS_HUB__SERVER__HOST": "10.1.2.3",
        "OCOS_HUB__ACCESS__ANONYMOUS": '["subscribe:*"]',
        "OCOS_HUB__HISTORY__MAX_EVENTS": "50",
    })
    assert config.server.port == 9100 and config.server.host == "10.1.2.3"
    assert config.access.anonymous == ["subscribe:*"]
    assert config.history.max_events == 50


def test_environment_override_is_validated_too(tmp_path: Path) -> None:
    message = refusal(write(tmp_path, ""), {"OCOS_HUB__SERVER__PORT": "lots"})
    assert "[server] port" in message


def test_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import BaseModel, ValidationError

    class WithSecret(BaseModel):
        secret: Secret

    monkeypatch.setenv("HUB_TEST_SECRET", "from-env")
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("from-file\n")
    assert WithSecret(secret="env:HUB_TEST_SECRET").secret == "from-env"
    assert WithSecret(secret=f"file:{secret_file}").secret == "from-file"
    assert WithSecret(secret="inline").secret == "inline"
    with pytest.raises(ValidationError, match="HUB_TEST_MISSING is not set"):
        WithSecret(secret="env:HUB_TEST_MISSING")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocos_hub", *args], capture_output=True,
                          text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"})


def test_check_config_command(tmp_path: Path) -> None:
    good = run_cli("check-config", str(write(tmp_path, "[server]\nport = 9001\n")))
    assert good.returncode == 0 and "ok" in good.stdout
    bad_path = tmp_path / "bad.toml"
    bad_path.write_text("[server]\nport = -4\n")
    bad = run_cli("check-config", str(bad_path))
    assert bad.returncode == 2
    assert f"{bad_path}: [server] port" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_plugins_command_lists_installed_plugins(tmp_path: Path) -> None:
    path = write(tmp_path, '[plugins]\nenabled = ["blocks"]\n')
    result = run_cli("plugins", "--config", str(path))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert rows["blocks"] == "yes" and rows["nft"] == "-"
    assert "ocos-hub" in result.stdout


def test_python_dash_m_and_console_script_agree() -> None:
    assert run_cli("--version").stdout.startswith("ocos-hub ")
