"""Root of the `mnbench` CLI: composes the commands and turns `MnbenchError` into one line and exit code 2."""

from __future__ import annotations

import os
import sys

import typer

from mnbench.errors import MnbenchError

app = typer.Typer(
    name="mnbench",
    help="Theoretical FLOP savings of depthwise-separable MobileNets against the speedup your hardware delivers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so `mnbench --help` stays cheap for commands that pull in torch only when they run.
    if app.registered_commands:  # once per process, however many callers
        return
    from mnbench.cli import check_cmd, devices_cmd, models_cmd, peak_cmd, profile_cmd, report_cmd, run_cmd

    app.command("models")(models_cmd.models)
    app.command("export")(models_cmd.export)
    app.command("devices")(devices_cmd.devices)
    app.command("run")(run_cmd.run)
    app.command("report")(report_cmd.report)
    app.command("profile")(profile_cmd.profile)
    app.command("peak")(peak_cmd.peak)
    app.command("check")(check_cmd.check)
    from mnbench.cli import doctor_cmd

    app.command("doctor")(doctor_cmd.doctor)
    from mnbench.cli import predict_cmd

    app.command("predict")(predict_cmd.predict)
    from mnbench.cli import ablate_cmd

    app.command("ablate")(ablate_cmd.ablate)


def main() -> None:
    _register()
    try:
        app()
    except MnbenchError as exc:
        if os.environ.get("MNBENCH_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
