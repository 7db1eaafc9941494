"""Suggested commands repeat the options the user gave that say where they work (cliapp.suggest)."""

from __future__ import annotations

import importlib

import pytest

from mnv3bench import cli, cliapp


@pytest.fixture
def invoked():
    """Set this process's command line as cli.main would (with every command registered)."""
    for name in cli.COMMAND_MODULES:
        importlib.import_module(f"mnv3bench.commands.{name}")

    def set_args(*args: str) -> None:
        cliapp.set_invocation(list(args))

    yield set_args
    cliapp.set_invocation([])


def test_a_suggestion_repeats_the_where_options_its_command_takes(invoked):
    invoked("run", "-d", "pixel3", "--db=/x y/r.db", "--adb", "10.0.0.2:5555", "--serial", "S1", "--models-dir", "m",
            "--direct", "large-relu", "--trials", "9", "--", "--use_gpu=false")
    assert cliapp.suggest("mnv3bench compare a b --device pixel3") == "mnv3bench compare a b --device pixel3 --db '/x y/r.db'"
    assert cliapp.suggest("mnv3bench doctor") == "mnv3bench doctor --device pixel3 --adb 10.0.0.2:5555 --serial S1 --direct"
    assert cliapp.suggest("mnv3bench build x") == "mnv3bench build x --models-dir m"
    assert cliapp.suggest("mnv3bench variants") == "mnv3bench variants"
    # A device the hint names on purpose stays; every quoted command in a text gets the options.
    text = "Check free space (`mnv3bench doctor --device pixel6`), then `mnv3bench variants`."
    assert cliapp.with_given_options(text) == ("Check free space (`mnv3bench doctor --device pixel6 --adb 10.0.0.2:5555 "
                                               "--serial S1 --direct`), then `mnv3bench variants`.")


def test_the_rerun_command_is_the_users_own_with_the_flag_before_the_passthrough(invoked):
    invoked("table", "5", "-d", "emulator", "--no-reuse", "--db", "a b.db", "--", "--use_gpu=false")
    assert cliapp.rerun_command("--reuse") == "mnv3bench table 5 -d emulator --db 'a b.db' --reuse -- --use_gpu=false"
    invoked("run", "-d", "emulator", "x", "--resume")
    assert cliapp.rerun_command("--resume") == "mnv3bench run -d emulator x --resume"


def test_outside_the_cli_only_the_given_options_are_added(invoked):
    invoked()
    assert cliapp.suggest("mnv3bench run --device emulator a", db="r.db") == "mnv3bench run --device emulator a --db r.db"
    assert cliapp.rerun_command("--resume", fallback="mnv3bench run") == "mnv3bench run --resume"


def test_with_several_phones_a_suggestion_repeats_them_or_pairs_one_phone_with_its_serial(invoked):
    invoked("table", "3", "--device", "pixel1", "--device", "pixel2", "-d", "pixel3", "--serial", "A", "--serial", "B",
            "--serial=C", "--reports-dir", "out", "--db", "r.db")
    # A command that takes them repeated gets every phone, in order.
    assert cliapp.suggest("mnv3bench table 4") == ("mnv3bench table 4 --device pixel1 --device pixel2 --device pixel3 "
                                                   "--serial A --serial B --serial C --reports-dir out --db r.db")
    assert cliapp.suggest("mnv3bench compare a b") == ("mnv3bench compare a b --device pixel1 --device pixel2 "
                                                       "--device pixel3 --db r.db")
    # A command about one phone gets that phone's own serial.
    assert cliapp.suggest("mnv3bench doctor --device pixel2") == "mnv3bench doctor --device pixel2 --serial B"
    assert cliapp.suggest("mnv3bench run --device pixel3 a b") == "mnv3bench run --device pixel3 a b --serial C --db r.db"
    assert cliapp.with_given_options("`mnv3bench doctor`", phone="pixel2") == "`mnv3bench doctor --device pixel2 --serial B`"
    # No phone named, or one not among them: no guess at which phone, and no other phone's serial.
    assert cliapp.suggest("mnv3bench doctor") == "mnv3bench doctor"
    assert cliapp.suggest("mnv3bench doctor --device pixel6") == "mnv3bench doctor --device pixel6"
    assert cliapp.with_given_options("`mnv3bench report`") == "`mnv3bench report --reports-dir out --db r.db`"


def test_a_failed_phones_hint_names_that_phone_and_the_error_ends_with_the_command_to_resume(invoked):
    from mnv3bench.bench.fleet import FleetResult, Phone, PhoneOutcome
    from mnv3bench.commands.measure_options import fleet_failure
    from mnv3bench.device.profiles import load_profile
    from mnv3bench.errors import MnvError

    invoked("run", "-d", "pixel1", "-d", "pixel2", "--serial", "A", "--serial", "B", "large-relu")
    phones = [Phone(load_profile(name), serial, "given with --serial") for name, serial in (("pixel1", "A"), ("pixel2", "B"))]
    ok = PhoneOutcome(phones[0], result=object())  # type: ignore[arg-type]  # only its being there counts
    failed = PhoneOutcome(phones[1], error=MnvError("the disk is full.", "Free space (`mnv3bench doctor`)."))
    error = fleet_failure(FleetResult([ok, failed]), "run it again with --resume.",
                          cliapp.rerun_command("--resume"))
    assert error is not None and error.message.startswith("1 of 2 phones failed: pixel2: the disk is full.")
    lines = error.hint.splitlines()
    assert lines[0].startswith("Fix the cause on each failed phone (below), then run it again with --resume.")
    assert lines[1] == "pixel2: Free space (`mnv3bench doctor --device pixel2 --serial B`)."
    assert lines[-1] == "That is: mnv3bench run -d pixel1 -d pixel2 --serial A --serial B large-relu --resume"
