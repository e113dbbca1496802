"""The command line: every command and option teaches, exit codes, one JSON document."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
import typer

from tests.conftest import run_cli
from upshot.cli import COMMAND_MODULES, app


def _walk(command, path=()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "upshot" for p, _ in COMMANDS]
)
def test_every_command_and_option_has_help(path, command):
    assert (command.help or "").strip(), f"`upshot {' '.join(path)}` has no help"
    for param in command.params:
        if param.param_type_name == "option":
            assert (param.help or "").strip(), (
                f"{param.opts} of `upshot {' '.join(path)}` has no help"
            )
    result = run_cli(*path, "--help")
    assert result.code == 0
    assert "Usage:" in result.out
    # an example command stands on its own indented lines: click reflows a paragraph
    # into prose unless it starts with \b
    for line in result.out.splitlines():
        if re.search(r"\S.*(?<!`)\bupshot [a-z ]+--[a-z]", line) and not line.startswith("Usage:"):
            assert line.lstrip().startswith(("upshot ", "--")), f"example reflowed: {line!r}"


def test_help_and_status_import_no_heavy_library():
    probe = (
        "import sys; from upshot.cli import app; "
        "heavy = [m for m in ('econml', 'dowhy', 'statsmodels', 'sklearn', 'altair', 'lightgbm', "
        "'polars', 'pandas') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# what `--help` must not import: the heavy libraries, and what only a running command
# needs (the config and Pydantic, which Typer uses to coerce option values; Rich's help
# renderer pulls in a Markdown parser)
NOT_FOR_HELP = (
    "econml", "dowhy", "statsmodels", "sklearn", "altair", "lightgbm", "polars", "pandas",
    "numpy", "duckdb", "pydantic", "rich", "markdown_it", "upshot.config",
)  # fmt: skip
_HELP_PROBE = (
    "import sys\n"
    "from upshot.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    assert exc.code in (0, None), exc.code\n"
    "print([m for m in {names!r} if m in sys.modules], file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    "path", [p for p, _ in COMMANDS], ids=[" ".join(p) or "upshot" for p, _ in COMMANDS]
)
def test_help_imports_neither_pydantic_nor_rich_nor_the_config(path):
    # a fresh interpreter each: what a user's `upshot ... --help` loads
    probe = _HELP_PROBE.format(names=NOT_FOR_HELP)
    out = subprocess.run(
        [sys.executable, "-c", probe, *path, "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage:" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS[1:], ids=[" ".join(p) for p, _ in COMMANDS[1:]]
)
def test_the_quick_help_page_is_the_one_typer_prints_through_the_root(path, command):
    quick = run_cli(*path, "--help", env={"COLUMNS": "100"})
    # a root option first sends it the ordinary way, through the root group
    ordinary = run_cli("--debug", *path, "--help", env={"COLUMNS": "100"})
    assert quick.code == ordinary.code == 0
    assert quick.out == ordinary.out
    assert f"Usage: upshot {' '.join(path)} [OPTIONS]" in quick.out


def test_the_quick_root_page_is_the_one_typer_prints():
    # the quick root page builds each command without its options and each group without
    # its commands; a root option first sends it the ordinary way, through the whole tree
    quick = run_cli("--help", env={"COLUMNS": "100"})
    ordinary = run_cli("--debug", "--help", env={"COLUMNS": "100"})
    assert quick.code == ordinary.code == 0
    assert quick.out == ordinary.out
    assert "Usage: upshot [OPTIONS] COMMAND [ARGS]..." in quick.out


_MODULES_PROBE = (
    "import sys\n"
    "from upshot.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(sorted(m for m in sys.modules if m.startswith('upshot.cli.')), file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    ("path", "module"),
    [(("experiments", "decide"), "experiments"), (("load",), "warehouse"), (("lake",), "lake")],
)
def test_a_help_page_imports_only_its_command_module(path, module):
    out = subprocess.run(
        [sys.executable, "-c", _MODULES_PROBE, *path, "--help"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"Usage: upshot {' '.join(path)} [OPTIONS]" in out.stdout
    loaded = ast.literal_eval(out.stderr.strip().splitlines()[-1])
    commands = {m.split(".")[2] for m in loaded} - {"common", "output"}
    assert commands == {module}


def test_commands_keep_their_order_whatever_module_registered_first():
    # a help page registers its module first; the whole app later lists in the usual order
    probe = (
        "import sys, typer\n"
        "from upshot.cli import main\n"
        "if sys.argv[1:]:\n"
        "    try:\n"
        "        main(sys.argv[1:])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "from upshot.cli import app\n"
        "print(list(typer.main.get_command(app).commands))\n"
    )
    orders = [
        subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
        ).stdout.splitlines()[-1]
        for args in ((), ("lake", "--help"), ("run", "--help"))
    ]
    assert orders[0] == orders[1] == orders[2]
    assert ast.literal_eval(orders[0]) == list(COMMANDS[0][1].commands)
    # every top-level name is mapped to its module (else its page goes the slow way)
    mapped = [n for names in COMMAND_MODULES.values() for n in names]
    assert sorted(mapped) == sorted(COMMANDS[0][1].commands)


def test_unknown_command_and_bad_option_are_usage_errors():
    assert run_cli("frobnicate").code == 2
    assert run_cli("load", "nonsense-table", "x.csv").code == 2
    assert run_cli("status", "--loads", "many").code == 2


def test_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "missing.csv"
    plain = run_cli("--db", str(tmp_path / "w.duckdb"), "load", "sends", str(missing))
    assert plain.code == 2
    assert plain.err.strip() == f"Error: {missing}: no such file or directory"
    debug = run_cli("--debug", "--db", str(tmp_path / "w.duckdb"), "load", "sends", str(missing))
    assert "Traceback" in debug.err


def test_json_output_is_exactly_one_document(tmp_path):
    (tmp_path / "s.csv").write_text(
        "send_id,user_id,message_class,channel,decided_at,treated\n"
        "s1,u1,c,push,2026-11-16 10:00:00,true\n"
    )
    db = str(tmp_path / "w.duckdb")
    for args in (("load", "sends", str(tmp_path / "s.csv"), "--json"), ("status", "--json")):
        result = run_cli("--db", db, *args)
        assert result.code == 0
        json.loads(result.out)  # raises if there is more than one document
        assert result.out.count("\n") == 1


def test_status_formats(tmp_path):
    (tmp_path / "s.csv").write_text(
        "send_id,user_id,message_class,channel,decided_at,treated\n"
        "s1,u1,c,push,2026-11-16 10:00:00,true\n"
    )
    db = str(tmp_path / "w.duckdb")
    run_cli("--db", db, "load", "sends", str(tmp_path / "s.csv"))
    csv_out = run_cli("--db", db, "status", "--format", "csv").out.splitlines()
    assert csv_out[0] == "table,rows,first,last"
    assert csv_out[1] == "sends,1,2026-11-16 10:00:00,2026-11-16 10:00:00"
    ndjson = run_cli("--db", db, "status", "--format", "ndjson").out.splitlines()
    assert [json.loads(line)["table"] for line in ndjson] == [
        "sends",
        "outcomes",
        "users",
        "assignments",
    ]
    table = run_cli("--db", db, "status").out
    assert "message classes" in table


def test_db_resolution_order(tmp_path, monkeypatch):
    from upshot.config import Config, Warehouse, resolve_db

    config = Config(warehouse=Warehouse(path="from_toml.duckdb"))
    monkeypatch.delenv("UPSHOT_DB", raising=False)
    assert resolve_db(config, None) == "from_toml.duckdb"
    monkeypatch.setenv("UPSHOT_DB", "from_env.duckdb")
    assert resolve_db(config, None) == "from_env.duckdb"
    assert resolve_db(config, "from_flag.duckdb") == "from_flag.duckdb"


def test_init_writes_the_defaults_once(tmp_path):
    target = tmp_path / "upshot.toml"
    assert run_cli("init", str(target)).code == 0
    assert run_cli("init", str(target)).code == 2
    assert run_cli("init", str(target), "--force").code == 0


HOSTILE = ("=cmd|' /C calc'!A0", "+SUM(1)", "@SUM(1)", "-2+3", "\tx", "\rx", "[/]oops")


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(capsys):
    from upshot.cli.output import Format, emit

    rows = [{"name": name, "value": -1.5, "count": -3} for name in HOSTILE]
    rows.append({"name": "plain", "value": 2.0, "count": 4})
    emit(Format.csv, {}, {"rows": rows})
    import csv
    import io

    got = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert got[0] == ["name", "value", "count"]
    # OWASP: a leading quote makes the cell text; numbers stay numbers (a minus sign is data)
    assert [r[0] for r in got[1:]] == [*("'" + n for n in HOSTILE[:-1]), "[/]oops", "plain"]
    assert {(r[1], r[2]) for r in got[1:-1]} == {("-1.5", "-3")}


def test_values_print_as_literal_text_not_rich_markup(tmp_path):
    names = ("[/]oops", "[link=https://evil.example]click[/link]", "[bold]b[/bold]")
    (tmp_path / "p.csv").write_text(
        "path;total_conversions;total_null\n"
        + "\n".join(f"{n} > email;2;3" for n in names)
        + "\n"
        + "=cmd|x;1;1\n",
        encoding="utf-8",
    )
    table = run_cli("touches", "--paths", str(tmp_path / "p.csv"))
    assert table.code == 0, table.err
    for name in names:
        assert name in table.out
    assert "\x1b]8;" not in table.out  # no OSC 8 hyperlink
    csv_out = run_cli("touches", "--paths", str(tmp_path / "p.csv"), "--format", "csv")
    assert csv_out.code == 0, csv_out.err
    assert "\n'=cmd|x," in csv_out.out
    assert "\n=cmd" not in csv_out.out
