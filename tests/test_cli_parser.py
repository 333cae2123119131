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


def _argparse_view(argv):
    args = vars(cli.build_parser().parse_args(argv))
    return {key: value for key, value in args.items() if key in _FAST_FIELDS}


_FAST_FIELDS = ("root", "log", "log_format", "debug", "systemd_cgroup", "command", "handler", "container_id",
                "force", "signal", "all")


def test_fast_parser_matches_argparse():
    cases = [
        ["state", "abc"],
        ["--root", "/tmp/r", "start", "abc"],
        ["--root=/tmp/r", "--log", "/tmp/l", "--log-format", "json", "--debug", "delete", "abc"],
        ["delete", "--force", "abc"],
        ["delete", "-f", "abc"],
        ["kill", "abc"],
        ["kill", "abc", "KILL"],
        ["--systemd-cgroup", "kill", "abc", "9"],
    ]
    for argv in cases:
        fast = cli._parse_fast(argv)
        assert fast is not None, argv
        expected = _argparse_view(argv)
        assert {key: getattr(fast, key) for key in expected} == expected, argv


def test_fast_parser_leaves_other_calls():
    for argv in (["list"], ["kill", "--all", "abc"], ["state"], ["state", "a", "b"], ["--rootless", "true", "state", "a"],
                 ["--log-format", "xml", "state", "a"], ["create", "abc"], ["state", "--help"]):
        assert cli._parse_fast(argv) is None, argv
