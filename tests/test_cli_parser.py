"""The CLI builds only the subcommand it runs; these checks keep that shortcut honest."""

from navio_runtime import cli


def _subcommand_names(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return set(action.choices)
    raise AssertionError("the parser has no subcommands")


def test_commands_match_parser():
    assert set(cli.COMMANDS) == _subcommand_names(cli.build_parser())


def test_requested_command_skips_globals():
    argv = ["--root", "/tmp/x", "--log", "state", "--log-format", "json", "--debug", "kill", "abc", "KILL"]

    assert cli._requested_command(argv) == "kill"


def test_requested_command_unknown():
    assert cli._requested_command(["--debug", "frobnicate"]) is None


def test_only_parser_parses_same_args():
    argv = ["--root", "/tmp/x", "create", "--bundle", "/b", "--pid-file", "/p", "abc"]

    full = cli.build_parser().parse_args(argv)
    only = cli.build_parser(only="create").parse_args(argv)

    assert vars(full) == vars(only)
