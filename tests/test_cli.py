"""One command-line dialect (hrm.cli_args): every sub-command's --help names every option it declares, every
sub-command parses with it, and the parser itself: the spellings, the errors, and never anything but its
own exception on any argv."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrm import cli
from hrm.cli_args import BOOLEAN_WORDS, Command, CommandLineExit, HelpRequested, Option, UsageError, parse_bool


def every_command() -> list[tuple[list[str], Command]]:
    """([sub-command, sub-sub-command...], Command) for every command and sub-command of `hrm`."""
    found = []
    for name in cli.COMMANDS:
        for words, command in cli.spec(name).walk():
            found.append(([name, *words], command))
    return found


COMMANDS = every_command()
LEAVES = [(words, command) for words, command in COMMANDS if not command.commands]


def run_hrm(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_every_sub_command_and_sub_sub_command_is_covered():
    names = {" ".join(words) for words, _ in COMMANDS}
    assert set(cli.COMMANDS) <= names
    assert {"data sudoku", "data maze", "data arc", "data check", "data show", "export onnx", "export mlir",
            "export mlx", "bench train"} <= names


@pytest.mark.parametrize("words,command", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_help_names_every_option(words, command, capsys):
    code, out, err = run_hrm([*words, "--help"], capsys)
    assert code == 0, err
    assert out.startswith(f"usage: hrm {' '.join(words)}"), out[:200]
    lines = out.splitlines()
    flat = " ".join(out.split())
    for sub in command.commands:
        assert any(line.split()[:1] == [sub] for line in lines), f"hrm {' '.join(words)} --help omits {sub}"
    for option in command.options:
        assert any(line.startswith(f"  {option.name} ") for line in lines), f"--help does not name {option.name}"
        assert option.help and " ".join(option.help.split()) in flat, f"--help does not describe {option.name}"
        assert option.flag in flat                      # the --flag spelling is named too
    if words == ["train"]:
        from hrm.training.config import all_keys
        listed = out.split("config keys")[1]
        for key in all_keys():
            assert key in listed, f"hrm train --help does not list {key}"


@pytest.mark.parametrize("words,command", LEAVES, ids=[" ".join(w) for w, _ in LEAVES])
def test_every_command_parses_with_the_one_parser(words, command, capsys):
    """An unknown option is one line on stderr, with status 2 and no traceback, whatever the command."""
    code, out, err = run_hrm([*words, "--no-such-option-anywhere", "1"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"hrm {' '.join(words)}: unknown option '--no-such-option-anywhere'" in err


def test_unknown_sub_command_is_named(capsys):
    code, _, err = run_hrm(["data", "sudok"], capsys)
    assert code == 2 and "did you mean 'sudoku'?" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_hrm(["export"], capsys)
    assert code == 2 and "missing command" in err


# ----------------------------------------------------------------------------------------------------
# The parser

SPEC = Command("hrm t", "a test command", [
    Option("checkpoint", Path, positional=True, required=True, help="the run"),
    Option("puzzle", positional=True, help="the puzzle"),
    Option("output_dir", help="where"),
    Option("whole_puzzle", bool, False, help="a flag"),
    Option("steps", int, 20, help="an integer"),
    Option("rate", float, 0.5, help="a number"),
    Option("size", int, None, help="an optional integer"),
    Option("index", int, [0], many=True, help="a list"),
    Option("split", default="train", choices=("train", "test"), help="a choice"),
    Option("out", Path, short="-o", help="a path with a short spelling"),
])


def parse(*argv: str):
    return SPEC.parse(list(argv))


def test_spellings_of_one_option_agree():
    forms = [("output_dir=x",), ("output-dir=x",), ("--output-dir", "x"), ("--output-dir=x",),
             ("--output_dir", "x"), ("--output_dir=x",), ("+output_dir=x",)]
    for form in forms:
        assert parse("run", *form).output_dir == "x", form
    assert parse("run", "-o", "f").out == Path("f") == parse("run", "--out=f").out == parse("run", "out=f").out


def test_values_are_typed_and_defaults_kept():
    args = parse("run", "steps=3", "--rate", "1e-3", "size=1e3")
    assert (args.steps, args.rate, args.size, args.checkpoint) == (3, 1e-3, 1000, Path("run"))
    assert (args.whole_puzzle, args.index, args.split, args.puzzle) == (False, [0], "train", None)
    assert args.given == {"checkpoint", "steps", "rate", "size"}
    assert parse("run", "size=none").size is None and parse("run", "--steps", "-2").steps == -2
    assert list(args.values()) == [o.name for o in SPEC.options]        # declaration order


@pytest.mark.parametrize("word", sorted(BOOLEAN_WORDS))
def test_boolean_spellings(word):
    for case in (word, word.upper(), word.capitalize()):
        expected = BOOLEAN_WORDS[word]
        assert parse_bool(case) is expected
        assert parse("run", f"whole_puzzle={case}").whole_puzzle is expected
        assert parse("run", f"--whole-puzzle={case}").whole_puzzle is expected
        assert parse("run", "--whole-puzzle", case).whole_puzzle is expected


def test_a_flag_alone_means_true_and_takes_no_positional():
    args = parse("--whole-puzzle", "run", "PUZ")
    assert args.whole_puzzle is True and args.checkpoint == Path("run") and args.puzzle == "PUZ"
    assert parse("run", "--whole-puzzle").whole_puzzle is True
    with pytest.raises(UsageError, match="whole_puzzle: expected true or false.*got 'maybe'"):
        parse("run", "whole_puzzle=maybe")


def test_positional_shorthand():
    args = parse("run", "1.3..")
    assert (args.checkpoint, args.puzzle) == (Path("run"), "1.3..")
    args = parse("puzzle=P", "run")                    # a key given by name: the bare word fills the next
    assert (args.checkpoint, args.puzzle) == (Path("run"), "P")
    args = parse("--", "--odd-name", "x=y")            # after --, words are values
    assert (args.checkpoint, args.puzzle) == (Path("--odd-name"), "x=y")
    with pytest.raises(UsageError, match=r"missing CHECKPOINT"):
        parse("steps=3")
    with pytest.raises(UsageError, match=r"'third' is not a key=value argument"):
        parse("a", "b", "third")


def test_lists():
    assert parse("run", "index=1,2,3").index == [1, 2, 3]
    assert parse("run", "--index", "1", "2", "PUZ").index == [1, 2]        # stops at a non-integer ...
    assert parse("run", "--index", "1", "2", "PUZ").puzzle == "PUZ"        # ... which is the next positional
    assert parse("run", "--index", "4", "steps=2").steps == 2
    assert parse("run", "--index", "1", "--index", "5").index == [1, 5]


def test_unknown_key_names_the_nearest_one_in_one_line():
    with pytest.raises(UsageError) as error:
        parse("run", "outptu_dir=x")
    assert error.value.code == 2
    assert error.value.message == "hrm t: unknown option 'outptu_dir'; did you mean 'output_dir'?"
    with pytest.raises(UsageError, match=r"unknown option '--whole-puzle'; did you mean '--whole-puzzle'\?"):
        parse("run", "--whole-puzle")


def test_bad_values_name_the_key_and_the_value():
    for argv, message in [(("steps=lots",), "steps: expected an integer, got 'lots'"),
                          (("steps=1.5",), "steps: expected an integer, got '1.5'"),
                          (("--rate", "fast"), "--rate: expected a number, got 'fast'"),
                          (("split=tset",), "split: expected one of train, test, got 'tset'; did you mean 'test'?"),
                          (("--steps",), "--steps needs a value"),
                          (("--steps", "--rate", "1"), "--steps needs a value")]:
        with pytest.raises(UsageError) as error:
            parse("run", *argv)
        assert message in error.value.message and "\n" not in error.value.message


def test_help_is_generated_from_the_declarations():
    with pytest.raises(HelpRequested) as shown:
        parse("run", "--help")
    assert shown.value.code == 0
    text = shown.value.message
    assert text.startswith("usage: hrm t CHECKPOINT [PUZZLE] [key=value ...]")
    for option in SPEC.options:
        assert f"  {option.name} " in text and option.help in text and option.flag in text
    assert "[default 20]" in text and "{train,test}" in text and "(--out, -o)" in text


def test_passthrough_hands_undeclared_key_values_on_untouched():
    spec = Command("hrm p", options=[Option("config", short="-c")], passthrough="overrides")
    args = spec.parse(["-c", "tiny", "lr=1e-4", "+arch.L_cycles=8", "--data_path=x", "resume=runs/a b"])
    assert args.config == "tiny"
    assert args.overrides == ["lr=1e-4", "+arch.L_cycles=8", "data_path=x", "resume=runs/a b"]
    with pytest.raises(UsageError, match="unknown option '--confg'; did you mean '--config'"):
        spec.parse(["--confg", "x"])


def test_one_of_groups():
    spec = Command("hrm g", options=[Option("input", many=True), Option("generate", int)], one_of=[("input", "generate")])
    assert spec.parse(["--input", "a", "b"]).input == ["a", "b"]
    with pytest.raises(UsageError, match="give one of input=... or generate=..."):
        spec.parse([])
    with pytest.raises(UsageError, match="do not go together"):
        spec.parse(["input=a", "generate=3"])


# ----------------------------------------------------------------------------------------------------
# Property: whatever the argv, the parser returns or raises its own error, never anything else.

def _words(command: Command) -> st.SearchStrategy[str]:
    names = [o.name for o in command.options] + list(command.commands) or ["x"]
    name = st.sampled_from(names)
    value = st.one_of(st.text(max_size=12), st.sampled_from(sorted(BOOLEAN_WORDS) + ["none", "-1", "1e999", "nan",
                                                                                      "1,2", ",", "=", "--", "-"]))
    return st.one_of(
        st.text(max_size=16),
        value,
        st.builds(lambda n, v: f"{n}={v}", name, value),
        st.builds(lambda n, v: f"--{n.replace('_', '-')}={v}", name, value),
        name.map(lambda n: f"--{n.replace('_', '-')}"),
        st.sampled_from(["-h", "--help", "--", "-o", "-c", "+x=1", "-5"]),
    )


@pytest.mark.parametrize("words,command", COMMANDS + [([], SPEC)], ids=[" ".join(w) for w, _ in COMMANDS] + ["test"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_parser_raises_only_its_own_error(words, command, data):
    argv = data.draw(st.lists(_words(command), max_size=8))
    try:
        args = command.parse(argv)
    except CommandLineExit as e:
        assert e.code in (0, 2) and e.message
        if e.code == 2:
            assert "\n" not in e.message and e.message.startswith(command.prog)
        return
    for option in command.options:
        assert hasattr(args, option.name)


def test_the_readme_command_lines_parse():
    """Every `hrm ...` line of the README's code blocks is a valid command line (parsed, not run)."""
    import re
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = [line.removeprefix("$ ") for block in re.findall(r"```(?:bash)?\n(.*?)```", readme, re.S)
             for line in block.replace("\\\n", " ").splitlines()
             if line.removeprefix("$ ").split()[:2] in [["hrm", name] for name in cli.COMMANDS]]   # not output lines
    assert len(lines) > 10
    for line in lines:
        words = shlex.split(line, comments=True)[1:]
        try:
            cli.spec(words[0]).parse(words[1:])
        except CommandLineExit as e:
            pytest.fail(f"README: {line!r}: {e.message}")
