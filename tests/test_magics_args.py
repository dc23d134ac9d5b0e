"""Parsing `%research` lines into one typed model per subcommand."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_research_agent.core.models import Direction, ExplorationKind
from jupyter_research_agent.magics import args as a

VALID: list[tuple[str, type[Any], dict[str, Any]]] = [
    ("propose", a.ProposeArgs, {"cell": None, "direction": None, "max_proposals": 6, "seeds": 1}),
    ("propose -1", a.ProposeArgs, {"cell": "-1"}),
    ("propose 3", a.ProposeArgs, {"cell": "3"}),
    ("propose @0", a.ProposeArgs, {"cell": "@0"}),
    ("propose train-cell", a.ProposeArgs, {"cell": "train-cell"}),
    ("propose --metric acc --maximize", a.ProposeArgs, {"metric": "acc", "direction": "maximize"}),
    (
        "propose -2 --metric 'test accuracy=acc' --minimize",
        a.ProposeArgs,
        {"cell": "-2", "metric": "test accuracy=acc", "direction": Direction.MINIMIZE},
    ),
    (
        'propose --sweep "lr=0.001,0.01 epochs=3,10"',
        a.ProposeArgs,
        {"sweep": "lr=0.001,0.01 epochs=3,10"},
    ),
    (
        "propose --instructions 'try a smaller batch' --max-proposals 3 --seeds 2 --offline",
        a.ProposeArgs,
        {"instructions": "try a smaller batch", "max_proposals": 3, "seeds": 2, "offline": True},
    ),
    ("propose --max-proposals 0", a.ProposeArgs, {"max_proposals": 0}),
    ("fix", a.FixArgs, {"cell": None}),
    ("fix abc --offline --instructions 'mind the dtype'", a.FixArgs, {"cell": "abc"}),
    ("seeds", a.SeedsArgs, {"seeds": 5}),
    ("seeds 2 --seeds 10 --metric loss", a.SeedsArgs, {"cell": "2", "seeds": 10}),
    ("approve exp-1", a.ApproveArgs, {"ids": ["exp-1"]}),
    ("approve prop-1 prop-2", a.ApproveArgs, {"ids": ["prop-1", "prop-2"]}),
    ("run", a.RunArgs, {}),
    ("status", a.StatusArgs, {"exploration_id": None}),
    ("status exp-1", a.StatusArgs, {"exploration_id": "exp-1"}),
    ("results", a.ResultsArgs, {"exploration_id": None, "wait": True, "timeout": 600.0}),
    ("results exp-1 --no-wait", a.ResultsArgs, {"exploration_id": "exp-1", "wait": False}),
    ("results --timeout 2.5", a.ResultsArgs, {"timeout": 2.5}),
    ("list", a.ListArgs, {}),
    ("open exp-9", a.OpenArgs, {"exploration_id": "exp-9"}),
]


@pytest.mark.parametrize(("line", "model", "expected"), VALID)
def test_valid_lines_parse_into_their_model(
    line: str, model: type[Any], expected: dict[str, Any]
) -> None:
    # Given a valid magic line / When it is parsed
    command = a.parse(line)

    # Then the subcommand's model holds the values
    assert type(command) is model
    for field, value in expected.items():
        assert getattr(command, field) == value, field


@pytest.mark.parametrize(
    ("line", "kind"),
    [("propose", ExplorationKind.VARIATIONS), ("fix", ExplorationKind.FIX), ("seeds", "seeds")],
)
def test_each_targeted_subcommand_has_its_exploration_kind(line: str, kind: str) -> None:
    # Given propose / fix / seeds / When parsed / Then the kind sent to the server follows
    assert a.parse(line).kind == kind  # type: ignore[union-attr]


INVALID: list[tuple[str, str]] = [
    ("frobnicate", "invalid choice: 'frobnicate'"),
    ("propose --maximize --minimize", "not allowed with argument --maximize"),
    ("propose --max-proposals many", "invalid int value: 'many'"),
    ("propose --max-proposals 51", "--max-proposals: Input should be less than or equal to 50"),
    ("propose --seeds 0", "--seeds: Input should be greater than or equal to 1"),
    ("propose --metric =acc", "--metric needs a name"),
    ("propose a b", "unrecognized arguments: b"),
    ("propose --sweep", "expected one argument"),
    ("propose 'unclosed", "No closing quotation"),
    ("fix --sweep=lr=1,2", "unrecognized arguments: --sweep=lr=1,2"),
    ("seeds --seeds 1", "--seeds: Input should be greater than or equal to 2"),
    ("seeds --seeds 21", "--seeds: Input should be less than or equal to 20"),
    ("approve", "the following arguments are required: EXP_ID|PROPOSAL_ID"),
    ("run now", "unrecognized arguments: now"),
    ("status a b", "unrecognized arguments: b"),
    ("results --timeout 0", "--timeout: Input should be greater than 0"),
    ("results --timeout soon", "invalid float value: 'soon'"),
    ("open", "the following arguments are required: EXP_ID"),
    ("list --all", "unrecognized arguments: --all"),
]


@pytest.mark.parametrize(("line", "message"), INVALID)
def test_invalid_lines_give_one_line_messages(line: str, message: str) -> None:
    # Given an invalid line / When parsed
    with pytest.raises(a.UsageError) as caught:
        a.parse(line)

    # Then the error is one line that says what is wrong and names the command
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith("%research")


@pytest.mark.parametrize("line", ["", "   ", "-h", "--help"])
def test_no_arguments_or_help_gives_usage(line: str) -> None:
    # Given `%research` alone or with -h / When parsed / Then the usage lists every subcommand
    with pytest.raises(a.HelpRequested) as caught:
        a.parse(line)
    usage = str(caught.value)
    for name in ("propose", "fix", "seeds", "approve", "run", "status", "results", "list", "open"):
        assert name in usage
    assert "CELL" in usage


def test_subcommand_help_describes_its_options() -> None:
    # Given `%research propose -h` / When parsed / Then its own options are described
    with pytest.raises(a.HelpRequested) as caught:
        a.parse("propose -h")
    assert "--sweep SPEC" in str(caught.value)
    assert "--maximize" in str(caught.value)


@pytest.mark.parametrize("line", ["propose --offline", "fix", "seeds --seeds 3"])
def test_cell_form_carries_the_body(line: str) -> None:
    # Given `%%research <line>` with a body / When parsed / Then the body is the code to explore
    command = a.parse(line, "lr = 0.5\nprint(lr)\n")
    assert command.body == "lr = 0.5\nprint(lr)\n"  # type: ignore[union-attr]


@pytest.mark.parametrize("line", ["approve exp-1", "run", "status", "results", "list"])
def test_cell_form_with_other_subcommands_is_refused(line: str) -> None:
    # Given `%%research` with a body and a subcommand that does not explore code
    # When parsed / Then one line says which subcommands take a body
    with pytest.raises(a.UsageError, match="works with propose, fix and seeds"):
        a.parse(line, "x = 1\n")


def test_cell_form_with_blank_body_is_the_line_form() -> None:
    # Given `%%research status` with an empty body / When parsed / Then it is plain status
    assert a.parse("status", "\n  \n") == a.StatusArgs()
