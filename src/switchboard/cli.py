"""The `switchboard` command line (Typer + Rich)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Switchboard: an AI call-center engine. Call flows as YAML, telephony backends, "
                       "offline speech, an outbound dialer and a panel.")
console = Console()
err_console = Console(stderr=True)


@app.command()
def validate(directory: Path = typer.Argument(Path("scenarios"), help="folder of scenario YAML files")) -> None:
    """Validate every scenario file; print each error with file, line, column and how to fix it."""
    from switchboard.flows.validate import validate_directory

    if not directory.is_dir():
        err_console.print(f"[red]{directory}: not a folder[/red]")
        raise typer.Exit(2)
    results = validate_directory(directory)
    if not results:
        err_console.print(f"[yellow]{directory}: no .yaml scenario files[/yellow]")
        raise typer.Exit(1)
    bad = 0
    for res in results:
        if res.errors:
            bad += 1
            for error in res.errors:
                console.print(str(error), style="red", markup=False, highlight=False, soft_wrap=True)
        else:
            assert res.scenario is not None
            console.print(f"[green]ok[/green] {res.file} ({res.scenario.name}, "
                          f"{len(res.scenario.flow.steps)} steps"
                          f"{', inbound flow' if res.scenario.has_inbound else ''})", highlight=False)
    if bad:
        console.print(f"{bad} of {len(results)} files have errors")
        raise typer.Exit(1)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    from switchboard.flows.schema import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")


@app.command()
def simulate(
    scenario_file: Path = typer.Argument(..., help="scenario YAML file"),
    caller: Path = typer.Option(..., "--caller", help="caller script YAML"),
    inbound: bool = typer.Option(False, "--inbound", help="the caller rings us (runs inbound_flow)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    audio: bool = typer.Option(False, "--audio", help="real audio: TTS caller -> phone line -> VAD/STT"),
    wall_clock: bool = typer.Option(False, "--wall-clock", help="run in real time instead of virtual time"),
) -> None:
    """Run one simulated call and print its timeline."""
    from switchboard import app as composition
    from switchboard.flows.validate import parse_scenario_file
    from switchboard.telephony.sim.script import load_caller_file

    parsed = parse_scenario_file(scenario_file)
    if parsed.scenario is None:
        for error in parsed.errors:
            err_console.print(str(error), markup=False, highlight=False)
        raise typer.Exit(1)
    from pydantic import ValidationError

    from switchboard.flows.loader import YamlSyntaxError
    from switchboard.simulation import describe_errors

    try:
        caller_file = load_caller_file(caller)
    except YamlSyntaxError as exc:
        err_console.print(str(exc.error), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ValidationError as exc:
        err_console.print(f"{caller}: invalid caller script: {describe_errors(exc)}", markup=False, highlight=False,
                          soft_wrap=True)
        raise typer.Exit(1) from None
    settings = composition.load_settings_for_cli()
    ctx = composition.run_simulation(settings, parsed.scenario, caller_file, inbound=inbound, audio=audio,
                                     virtual=not wall_clock)
    from switchboard.simulation import summary

    data = summary(ctx)
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        return
    table = Table(title=f"{ctx.scenario} — {ctx.direction} call to {ctx.remote_number}")
    for col in ("t (s)", "event", "step", "detail"):
        table.add_column(col)
    for entry in data["timeline"]:
        detail = ", ".join(f"{k}={v}" for k, v in entry["detail"].items())
        table.add_row(f"{entry['at']:.1f}", entry["event"], entry["step"] or "", detail)
    console.print(table)
    console.print(f"result: [bold]{ctx.result}[/bold]  reason: {ctx.reason or '-'}  intent: {ctx.intent or '-'}"
                  f"  agent: {ctx.agent or '-'}")


@app.command("test-flows")
def test_flows(
    directory: Path = typer.Argument(Path("flowtests"), help="folder of flow test YAML files"),
    scenarios: Path = typer.Option(Path("scenarios"), "--scenarios", help="scenario folder"),
) -> None:
    """Run flow tests (scenario + caller script + expected result/steps); exit 1 on any failure."""
    from switchboard import app as composition

    files = sorted(p for p in directory.glob("*.yaml"))
    if not files:
        err_console.print(f"[red]{directory}: no flow tests[/red]")
        raise typer.Exit(1)
    settings = composition.load_settings_for_cli()
    outcomes = composition.run_flow_tests(settings, files, scenarios)
    passed = sum(1 for o in outcomes if o.passed)
    for o in outcomes:
        if o.passed:
            console.print(f"[green]PASS[/green] {o.file}", highlight=False)
        else:
            console.print(f"[red]FAIL[/red] {escape(o.file)}: " + escape("; ".join(o.problems)), highlight=False)
    console.print(f"{passed} passed, {len(outcomes) - passed} failed", highlight=False)
    if passed != len(outcomes):
        raise typer.Exit(1)


@app.command()
def run(
    contacts: int = typer.Option(None, "--contacts", help="demo: number of simulated contacts"),
    wall_clock: bool = typer.Option(False, "--wall-clock", help="demo: run in real time"),
    audio: bool = typer.Option(None, "--audio/--text", help="demo: real audio (default) or text mode"),
    web: bool = typer.Option(None, "--console/--no-console",
                             help="demo: serve the web console until Ctrl-C (default: CONSOLE_ENABLED)"),
) -> None:
    """The main job: run the engine with the configured backend (the simulator by default)."""
    from switchboard import app as composition

    settings = composition.load_settings_for_cli()
    raise typer.Exit(composition.run_main(settings, console, contacts=contacts, wall_clock=wall_clock,
                                          audio=audio, serve_console=settings.console_enabled if web is None
                                          else web))


from switchboard.cli_prompts import prompts_app  # noqa: E402

app.add_typer(prompts_app, name="prompts")

from switchboard.cli_users import tokens_app, users_app  # noqa: E402

app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

contacts_app = typer.Typer(no_args_is_help=True, help="Contacts of the built-in panel.")
app.add_typer(contacts_app, name="contacts")


@contacts_app.command("import")
def contacts_import(
    file: Path = typer.Argument(..., help="CSV or XLSX with a phone column (name, timezone, other columns "
                                          "become attributes)"),
    campaign: str = typer.Option(None, "--campaign", help="campaign name (created when missing)"),
) -> None:
    """Import contacts into the built-in panel; invalid rows are listed with the reason, valid rows kept."""
    from switchboard import app as composition

    settings = composition.load_settings_for_cli()
    code = asyncio.run(composition.import_contacts_file(settings, file, campaign, console))
    raise typer.Exit(code)


intents_app = typer.Typer(no_args_is_help=True, help="Intent classification.")
app.add_typer(intents_app, name="intents")


@intents_app.command("test")
def intents_test(
    scenario_file: Path = typer.Argument(..., help="scenario YAML file"),
    data: Path = typer.Argument(..., help="TSV of lang<TAB>label<TAB>utterance lines (# starts a comment)"),
    errors: bool = typer.Option(False, "--errors", help="also list every misclassified line"),
) -> None:
    """Classify labelled caller answers with the scenario's settings, exactly as a call would; print
    accuracy per language, the confusion matrix and, last, `accuracy: N.N%`."""
    from switchboard import app as composition

    settings = composition.load_settings_for_cli()
    raise typer.Exit(asyncio.run(composition.test_intents(settings, scenario_file, data, console,
                                                          show_errors=errors)))


@app.command()
def panel() -> None:
    """Serve only the built-in panel (dialer contract + REST API) from the local database: a panel
    that other Switchboard dialers can use as their external panel (PANEL_BASE_URL)."""
    from switchboard import app as composition

    settings = composition.load_settings_for_cli()
    raise typer.Exit(composition.run_server_loop(composition.serve_panel(settings, console)))


# --- campaigns: doctor, recent calls, call now -----------------------------------------------------
@app.command()
def doctor() -> None:
    """Check every configured dependency (scenarios, database, Redis, panel, Asterisk ARI and prompts,
    LLM, STT, TTS, SMS alerts): one line each; exit 1 when one fails."""
    from switchboard import app as composition
    from switchboard.doctor import run_checks

    settings = composition.load_settings_for_cli()
    checks = asyncio.run(run_checks(settings))
    for check in checks:
        style = {"ok": "green", "warn": "yellow", "fail": "red"}[check.status]
        console.print(check.line(), style=style, markup=False, highlight=False, soft_wrap=True)
    failed = sum(1 for c in checks if not c.ok)
    console.print(f"{len(checks) - failed} ok, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def calls(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="how many recent calls"),
    result: str = typer.Option(None, "--result", help="only calls with this result"),
    phone: str = typer.Option(None, "--phone", help="only calls to/from this number"),
    summary: bool = typer.Option(False, "--summary", help="calls per scenario and result instead"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines"),
) -> None:
    """Recent calls and their results (from the local store), newest first."""
    from switchboard import app as composition

    from switchboard.calls_cli import show_calls

    settings = composition.load_settings_for_cli()
    raise typer.Exit(asyncio.run(show_calls(settings, console, limit=limit, result=result, phone=phone,
                                            summary=summary, as_json=as_json)))


@app.command()
def call(
    number: str = typer.Argument(..., help="the number to call"),
    scenario: str = typer.Option(None, "--scenario", "-s", help="scenario to run (default: the next that fits)"),
    persona: str = typer.Option(None, "--persona", help="an AI persona instead of a scenario"),
    name: str = typer.Option(None, "--name", help="the contact's name"),
    field: list[str] = typer.Option([], "--field", help="contact field key=value (repeatable)"),
    url: str = typer.Option(None, "--url", help="a running Switchboard (default http://PANEL_HOST:PANEL_PORT)"),
) -> None:
    """Call NUMBER now through the dialer's limits and compliance: via the running `switchboard run`
    (POST /api/v1/calls) when there is one, else from this process; prints the call id and result."""
    from switchboard import app as composition

    fields = {}
    for item in field:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            err_console.print(f"[red]--field {item!r}: write key=value[/red]")
            raise typer.Exit(2)
        fields[key.strip()] = value
    settings = composition.load_settings_for_cli()
    raise typer.Exit(composition.call_number(settings, console, number, scenario=scenario, persona=persona,
                                             name=name, fields=fields, url=url))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
