"""`mnv3bench emulator serve`: the emulated phone in the foreground, for other tools to reach.

Any ADB client on this machine can then talk to it: `mnv3bench run --device emulator --adb
127.0.0.1:P`, `adb connect 127.0.0.1:P`, adb-shell. Ctrl-C stops it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from mnv3bench.cliapp import app, stderr, stdout
from mnv3bench.commands.signals import Stopped, exit_status, stop_on_signals
from mnv3bench.device.adb import default_key_path, load_signer
from mnv3bench.errors import UsageError

emulator_app = typer.Typer(
    name="emulator",
    help="The host emulator: an emulated Android phone that speaks real ADB on 127.0.0.1.",
    no_args_is_help=True,
)
app.add_typer(emulator_app, name="emulator")


@emulator_app.command(help="Serve the emulated phone on 127.0.0.1 until Ctrl-C.")
def serve(
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port on 127.0.0.1 (default: any free port).")] = 0,
    root: Annotated[
        Path | None,
        typer.Option("--root", help="Folder holding the phone's files (default: ~/.cache/mnv3bench/emulator/<profile>)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="Misbehave on purpose (repeatable): drop-push, drop-run, hang, crash, garbage, "
                                     "no-binary, hot, slow, cpuset-little, thermal-denied, download-name, stls, "
                                     "old-binary, throttle."),
    ] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="Emulator profile from devices/*.toml.")] = "emulator",
    play: Annotated[str | None, typer.Option(
        "--as", help="Play a phone's profile (e.g. pixel6): its cpus, clusters, thermal zones, getprop and "
                     "toybox errors, from devices/<name>.toml. Timing stays this host's.")] = None,
) -> None:
    from mnv3bench.device.profiles import load_profile
    from mnv3bench.emulator.faults import check_faults

    faults = check_faults(fault or [])
    if port and not 1024 <= port <= 65535:
        raise UsageError(f"--port {port} is outside 1024-65535", hint="Pick a free port such as 5600, or omit --port.")
    if 5555 <= port <= 5585:
        raise UsageError(
            f"--port {port} is in 5555-5585, which the adb server probes as emulators",
            hint="Pick another port such as 5600, or omit --port.",
        )
    profile = load_profile(play or device)
    if not profile.emulated and not play:
        raise UsageError(f"profile {profile.name!r} is a real phone, not an emulator",
                         hint=f"Use --as {profile.name} to play that phone, or --device emulator.")
    # The key the ADB clients here sign with; made when missing (a missing .pub is derived
    # from the private key, never by replacing it: phones trust that key).
    key = default_key_path()
    load_signer(key, notify=lambda message: stderr.print(message, highlight=False))
    logging.basicConfig(level=logging.WARNING, format="emulator: %(message)s")

    # `kill`, CI teardown (SIGTERM) and a closed terminal (SIGHUP) stop as cleanly as Ctrl-C:
    # server.stop() ends every benchmark stand-in the phone started.
    with stop_on_signals():
        _serve(profile, root, faults, key, port)


def _serve(profile: Any, root: Path | None, faults: frozenset[str], key: Path, port: int) -> None:
    from mnv3bench.emulator import start_in_process

    status = 0
    server = start_in_process(profile, root=root, faults=faults, trusted_keys=[Path(str(key) + ".pub")], port=port)
    try:
        stdout.print(f"emulated {profile.name} serving ADB on {server.address}", highlight=False)
        stdout.print(f"  mnv3bench run --device {profile.name} --adb {server.address}", highlight=False)
        stdout.print(f"  adb connect {server.address}", highlight=False)
        if faults:
            stdout.print(f"  faults: {', '.join(sorted(faults))}", highlight=False)
        stderr.print("Ctrl-C to stop.", highlight=False)
        server.serve_forever()
    except KeyboardInterrupt as interrupt:
        # Ctrl-C is how this command is meant to end (exit 0); SIGTERM/SIGHUP report themselves.
        status = exit_status(interrupt) if isinstance(interrupt, Stopped) else 0
    finally:
        server.stop()
        stderr.print(f"emulator on {server.address} stopped.", highlight=False)
    if status:
        raise typer.Exit(status)
