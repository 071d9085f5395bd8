"""The subcommand registry."""

from __future__ import annotations

import argparse

from scrm_local import cli


def test_registered_commands_are_nested() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["local", "run"])
    assert args._run is cli.local_run
    args = parser.parse_args(["invoke", "EchoFunction", "--event", "-"])
    assert (args._run, args.logical_id, args.event) == (cli.invoke, "EchoFunction", "-")
    args = parser.parse_args(["schedule", "Fn", "--event-name", "Nightly"])
    assert (args._run, args.event_name) == (cli.schedule, "Nightly")


def test_a_new_command_plugs_in(monkeypatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", list(cli.COMMANDS))

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("profile_id")

    @cli.command("demo", "check", help="a command added by later work", arguments=arguments)
    def verify(args: argparse.Namespace) -> int:
        return 7 if args.profile_id == "p1" else 0

    assert cli.main(["demo", "check", "p1"]) == 7


def test_group_without_subcommand_prints_help() -> None:
    assert cli.main(["local"]) == 2
