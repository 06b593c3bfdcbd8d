"""The `ocos-hub` command: serve, plugins, check-config, docs, tail."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from aiohttp import web

from ocos_hub import __version__
from ocos_hub.config import ConfigError, HubConfig, load_config
from ocos_hub.plugins import PluginHost, installed_plugins

COMMANDS = "ocos_hub.commands"


def _load(args: argparse.Namespace) -> HubConfig:
    overrides: dict[str, Any] = {}
    server = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if server:
        overrides["server"] = server
    return load_config(args.config, profile="demo" if args.demo else None, overrides=overrides)


def serve(args: argparse.Namespace) -> int:
    from ocos_hub.app import create_app, serving

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = _load(args)
    app = serving(create_app(config))
    server = config.server
    url = f"ws://{server.host}:{server.port}{server.ws_path}"
    print(f"OCOS Hub {__version__} listening on {url}", flush=True)
    print(f"  plugins: {', '.join(config.plugins.enabled) or 'none'}", flush=True)
    http = f"http://{server.host}:{server.port}"
    if server.docs:
        print(f"  docs:    {http}/docs", flush=True)
    if "dashboard" in config.plugins.enabled:
        path = config.plugins.section("dashboard").get("path", "/")
        print(f"  dashboard: {http}{path}", flush=True)
    if args.demo:
        print(f"  try it:  ocos-hub tail {url} blocks", flush=True)
    web.run_app(app, host=server.host, port=server.port, print=None,
                shutdown_timeout=server.shutdown_grace + 5, access_log=None)
    return 0


def list_plugins(args: argparse.Namespace) -> int:
    enabled: list[str] = []
    if args.config or args.demo:
        enabled = _load(args).plugins.enabled
    installed = installed_plugins()
    width = max([len(name) for name in installed] + [6])
    print(f"{'plugin':<{width}}  {'enabled':<7}  distribution")
    for name in sorted(installed):
        plugin = installed[name]
        mark = "yes" if name in enabled else "-"
        print(f"{name:<{width}}  {mark:<7}  {plugin.distribution} {plugin.version} "
              f"({plugin.value})")
    return 0


def check_config(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    from ocos_hub.hub import Hub

    Hub(config, PluginHost(config))
    print(f"{args.path}: ok ({len(config.plugins.enabled)} plugins enabled)")
    return 0


def write_docs(args: argparse.Namespace) -> int:
    from ocos_hub.docs.command import run

    return run(args)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="ocos-hub", description="OCOS Hub, the event hub "
                                   "for OCOS-Chain")
    main.add_argument("--version", action="version", version=f"ocos-hub {__version__}")
    commands = main.add_subparsers(dest="command", required=True)

    def config_args(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--config", "-c", help="TOML config file")
        cmd.add_argument("--demo", action="store_true",
                         help="start from the demo profile (all topics, chain simulator)")

    run = commands.add_parser("serve", help="run the hub")
    config_args(run)
    run.add_argument("--host", help="override [server] host")
    run.add_argument("--port", type=int, help="override [server] port")
    run.set_defaults(func=serve)

    plugins = commands.add_parser("plugins", help="list installed and enabled plugins")
    config_args(plugins)
    plugins.add_argument("--host", help=argparse.SUPPRESS)
    plugins.add_argument("--port", type=int, help=argparse.SUPPRESS)
    plugins.set_defaults(func=list_plugins)

    check = commands.add_parser("check-config", help="validate a config file and its plugins")
    check.add_argument("path")
    check.set_defaults(func=check_config)

    from ocos_hub.docs.command import add_arguments

    docs = commands.add_parser("docs", help="write the documentation generated from the "
                               "plugins (Markdown reference, AsyncAPI, OpenAPI, GraphQL, HTML)")
    add_arguments(docs)
    docs.set_defaults(func=write_docs)

    tail = commands.add_parser("tail", help="print a hub's events as JSON lines",
                               add_help=False)
    tail.add_argument("rest", nargs=argparse.REMAINDER)

    # Plugins' own commands (`ocos-hub apikey new ...`): entry points of the group
    # `ocos_hub.commands`, each `def register(parser) -> None` setting `func` on its parser.
    # They are imported only when invoked.
    for ep in entry_points(group=COMMANDS):
        cmd = commands.add_parser(ep.name, help=f"{ep.name} tools (from {ep.value})",
                                  add_help=False)
        cmd.add_argument("rest", nargs=argparse.REMAINDER)
    return main


def _client_main(argv: list[str]) -> int:
    from ocos_hub.client import main as client_main

    return client_main(argv)


def _plugin_command(name: str, argv: list[str]) -> int:
    (ep,) = entry_points(group=COMMANDS, name=name)
    register = ep.load()
    sub = argparse.ArgumentParser(prog=f"ocos-hub {name}")
    register(sub)
    args = sub.parse_args(argv)
    if not hasattr(args, "func"):
        sub.print_help()
        return 2
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # commands that parse their own arguments
        if argv and argv[0] == "tail":
            return _client_main(argv[1:])
        if argv and entry_points(group=COMMANDS, name=argv[0]):
            return _plugin_command(argv[0], argv[1:])
        args = parser().parse_args(argv)
        return int(args.func(args))
    except ConfigError as exc:
        print(f"ocos-hub: configuration error:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
