"""`mnv3bench devices`, `mnv3bench doctor`, `mnv3bench device setup`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from mnv3bench.cliapp import (
    AdbOpt,
    AdbServerOpt,
    DeviceOpt,
    DirectOpt,
    JsonOpt,
    SerialOpt,
    app,
    plain_output,
    print_json,
    stderr,
    stdout,
    suggest,
    with_given_options,
)
from mnv3bench.device.adb import connect, list_usb_serials
from mnv3bench.device.binary import (
    OfficialBinary,
    fetch_official_binary,
    file_sha256,
    litert_version,
    record_installed,
    reported_version,
)
from mnv3bench.device.preflight import FAIL, OK, WARN, Check, binary_checks, run_checks
from mnv3bench.device.probe import probe
from mnv3bench.device.profiles import list_profiles, load_profile
from mnv3bench.device.server_route import find_server, list_server_devices
from mnv3bench.device.session import open_device
from mnv3bench.errors import MnvError, UsageError

ForceOpt = Annotated[bool, typer.Option("--force", help="Use the profile even if the connected phone is another model.")]

device_app = typer.Typer(help="Prepare a device: install benchmark_model.", no_args_is_help=True)
app.add_typer(device_app, name="device")

PREBUILT_HELP = """\
benchmark_model is TensorFlow Lite's official benchmark tool; mnv3bench measures with it,
as the paper did. Get the prebuilt Android binary for the phone's ABI:
  - arm64-v8a (every Pixel): android_aarch64_benchmark_model
  - armeabi-v7a: android_arm_benchmark_model
from the "nightly pre-built binaries" linked in TensorFlow's
tensorflow/lite/tools/benchmark/README.md (LiteRT: tflite/tools/benchmark/README.md in
google-ai-edge/LiteRT), or build it: bazel build -c opt --config=android_arm64
//tensorflow/lite/tools/benchmark:benchmark_model
Then: `mnv3bench device setup --device {device} --benchmark-binary PATH`
(Without --benchmark-binary, device setup downloads the official arm64 binary itself.)"""


@app.command("devices")
def devices_command(adb: AdbOpt = None, adb_server: AdbServerOpt = None, as_json: JsonOpt = False) -> None:
    """List device profiles, and the devices reachable now (the adb server's, --adb / MNV3BENCH_ADB, USB)."""
    profiles = list_profiles()
    reachable: list[dict[str, str]] = []
    notes: list[str] = []
    try:
        server = find_server(adb_server)
        if server is not None:
            reachable.extend({"address": e.serial, "transport": f"adb-server {server}", "state": e.state,
                              "model": e.model, "device": e.codename, "serial": e.serial,
                              "profile": _profile_for(profiles, e.codename, e.model) if e.codename or e.model else ""}
                             for e in list_server_devices(server))
    except MnvError as err:
        if adb_server:
            raise
        notes.append(err.message)
    adb = adb or os.environ.get("MNV3BENCH_ADB") or None
    if adb:
        try:
            with connect(None, adb_address=adb, connect_timeout_s=5.0, auth_timeout_s=10.0,
                         notify=lambda m: stderr.print(m, highlight=False)) as device:
                props = probe(device, profiles[0]) if profiles else None
                reachable.append({"address": adb, "transport": "tcp", "state": "device",
                                  "model": props.model if props else "?",
                                  "device": props.device if props else "?", "serial": props.serial if props else "?",
                                  "profile": _profile_for(profiles, props.device, props.model) if props else ""})
        except MnvError as err:
            notes.append(f"{adb}: {err.message}")
    serials, usb_note = ([], None) if any(r["transport"].startswith("adb-server") for r in reachable) \
        else list_usb_serials()  # a running server holds the USB phones (and lists them above)
    reachable.extend({"address": s, "transport": "usb", "state": "", "model": "", "device": "", "serial": s,
                      "profile": ""} for s in serials)
    if usb_note:
        notes.append(usb_note)

    if as_json:
        print_json({
            "profiles": [{"name": p.name, "description": p.description, "soc": p.soc, "abi": p.abi,
                          "big_cores": list(p.big_cores), "pin_core": p.pin_core, "affinity_mask": p.affinity_mask,
                          "paper_column": p.paper_column, "emulated": p.emulated, "platform": p.platform,
                          "clusters": [{"name": c.name, "cpus": list(c.cpus), "max_freq_khz": c.max_freq_khz}
                                       for c in p.clusters]} for p in profiles],
            "reachable": reachable, "notes": notes})
        return
    table = Table(title="Device profiles (devices/*.toml)")
    for column in ("name", "description", "SoC", "ABI", "big cores", "pin (mask)", "paper"):
        table.add_column(column)
    for p in profiles:
        table.add_row(p.name, p.description, p.soc, p.abi, ",".join(map(str, p.big_cores)),
                      f"cpu{p.pin_core} ({p.affinity_mask})", p.paper_column or "-")
    stdout.print(table)
    if reachable:
        found = Table(title="Reachable devices")
        for column in ("address", "transport", "state", "model", "codename", "serial", "profile"):
            found.add_column(column)
        for r in reachable:
            found.add_row(r["address"], r["transport"], r["state"] or "-", r["model"], r["device"], r["serial"],
                          r["profile"] or "-")
        stdout.print(found)
    else:
        stdout.print("No device reachable now: plug a phone in (USB debugging on), give --adb HOST:PORT, "
                     "or use --device emulator (started automatically).")
    for note in notes:
        stderr.print(f"note: {note}", highlight=False)


def _profile_for(profiles: list, codename: str, model: str) -> str:
    for p in profiles:
        if codename in p.codenames or model in p.models:
            return p.name
    return ""


_MARK = {OK: "[green]ok[/]", WARN: "[yellow]warn[/]", FAIL: "[bold red]FAIL[/]"}


def _render_checks(checks: list[Check]) -> None:
    if plain_output():
        for c in checks:
            # Findings and fixes are text, not markup: "[thermal]" must print as written.
            stdout.print(f"{c.status.upper():4}  {c.name}: {escape(c.detail)}", highlight=False, soft_wrap=True)
            if c.fix and c.status != OK:
                stdout.print(f"      fix: {escape(with_given_options(c.fix))}", highlight=False, soft_wrap=True)
        return
    table = Table(title="mnv3bench doctor")
    for column in ("", "check", "finding", "what to do"):
        table.add_column(column)
    for c in checks:
        table.add_row(_MARK[c.status], c.name, escape(c.detail), escape(with_given_options(c.fix)) if c.status != OK else "")
    stdout.print(table)


@app.command("doctor")
def doctor_command(device: DeviceOpt, adb: AdbOpt = None, serial: SerialOpt = None, force: ForceOpt = False,
                   as_json: JsonOpt = False, adb_server: AdbServerOpt = None, direct: DirectOpt = False) -> None:
    """Check everything a run needs on a device and say what to fix (exit 1 if something fails)."""
    profile = load_profile(device)
    try:
        with open_device(profile, adb, serial, force, check=False, adb_server=adb_server, direct=direct,
                         notify=lambda m: stderr.print(m, highlight=False)) as session:
            checks = run_checks(session.device, profile, session.info, force=force)
    except UsageError:
        raise
    except MnvError as err:  # could not connect: that is the first (and only) finding
        checks = [Check("connection", FAIL, err.message, err.hint or "")]
    if as_json:
        print_json({"device": profile.name, "ok": not any(c.status == FAIL for c in checks),
                    "checks": [c.to_json() for c in checks]})
    else:
        _render_checks(checks)
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        if not as_json:
            again = suggest(f"mnv3bench doctor --device {device}", adb=adb, serial=serial, adb_server=adb_server)
            stderr.print(f"{len(failed)} check(s) failed: fix them and run `{again}` again.", highlight=False)
        raise typer.Exit(1)


@device_app.command("setup")
def setup_command(
    device: DeviceOpt,
    benchmark_binary: Annotated[Path | None, typer.Option(
        "--benchmark-binary", help="benchmark_model built for the phone's ABI (e.g. android_aarch64_benchmark_model).")] = None,
    litert: Annotated[str | None, typer.Option(
        "--litert-version", help="LiteRT release of the official binary to download (default: the installed "
                                 "ai-edge-litert's; 'latest' for the newest).")] = None,
    adb: AdbOpt = None, serial: SerialOpt = None, force: ForceOpt = False,
    adb_server: AdbServerOpt = None, direct: DirectOpt = False,
) -> None:
    """Push benchmark_model to the device, make it executable and verify it.

    Without --benchmark-binary, the official prebuilt binary for the phone's ABI is downloaded
    (once, into the user cache) at the LiteRT release installed on this host."""
    profile = load_profile(device)
    if benchmark_binary is None:
        official = _official_binary(profile.abi, litert_version(litert), device)
        benchmark_binary, local_hash, url = official.path, official.sha256, official.url
    else:
        if litert:
            raise UsageError("--litert-version picks the official binary to download; it has no meaning "
                             "with --benchmark-binary", "Give one of the two.")
        if not benchmark_binary.is_file() or not os.access(benchmark_binary, os.R_OK):
            raise UsageError(f"--benchmark-binary {benchmark_binary} is not a readable file",
                             "Give the path of the downloaded benchmark_model.\n" + PREBUILT_HELP.format(device=device))
        local_hash, url = file_sha256(benchmark_binary), None
    remote = profile.benchmark_binary
    with open_device(profile, adb, serial, force, adb_server=adb_server, direct=direct,
                     notify=lambda m: stderr.print(m, highlight=False)) as session:
        dev = session.device
        for warning in session.warnings:
            stderr.print(f"warning: {warning}", highlight=False)
        folder = remote.rsplit("/", 1)[0] or "/"
        made = dev.shell(f"mkdir -p {shlex.quote(folder)} {shlex.quote(profile.work_dir)}", timeout_s=30)
        if made.exit_code != 0:
            raise MnvError(f"cannot create {folder} on the device: {made.output.strip()}",
                           "Choose a writable benchmark_binary/work_dir in the profile (/data/local/tmp is).")
        size = benchmark_binary.stat().st_size
        stderr.print(f"pushing {benchmark_binary.name} ({size / 1e6:.1f} MB) to {remote} ...", highlight=False)
        dev.push(benchmark_binary, remote, mode=0o755)
        dev.shell(f"chmod 755 {shlex.quote(remote)}", timeout_s=30)
        remote_hash = dev.sha256(remote)
        if remote_hash != local_hash:
            dev.shell(f"rm -f {shlex.quote(remote)}", timeout_s=30)
            raise MnvError(f"{remote} on the device does not match {benchmark_binary} after the push "
                           f"(device sha256 {remote_hash or 'unreadable'})",
                           "Run the setup again; if it repeats, check the cable and free space.")
        checks = binary_checks(dev, profile)
        version = reported_version(dev, remote)
    record_installed(local_hash, version, url)
    _render_checks(checks)
    if any(c.status == FAIL for c in checks):
        raise typer.Exit(1)
    stdout.print(f"benchmark_model installed at {remote} on {session.info.model} (sha256 {local_hash[:12]}..., "
                 f"reports {'version ' + version if version else 'no version'}).", highlight=False)


def _official_binary(abi: str, version: str, device: str) -> OfficialBinary:
    """The cached official binary, or a download with a progress bar (a line when plain)."""
    if plain_output():
        started: list[bool] = []

        def line(done: int, total: int | None) -> None:
            if not started:
                started.append(True)
                size = f" ({total / 1e6:.1f} MB)" if total else ""
                stderr.print(f"downloading benchmark_model {version} for {abi}{size} ...", highlight=False)

        official = fetch_official_binary(abi, version, device=device, progress=line)
    else:
        with Progress(TextColumn("benchmark_model {task.description}"), BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=stderr, transient=True) as bar:
            task = bar.add_task(f"{version} ({abi})", total=None)
            official = fetch_official_binary(abi, version, device=device,
                                             progress=lambda done, total: bar.update(task, completed=done, total=total))
    how = "downloaded from" if official.downloaded else "cached, from"
    stderr.print(f"benchmark_model {version}: {how} {official.url} -> {official.path}", highlight=False, soft_wrap=True)
    return official
