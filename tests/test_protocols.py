"""Each seam's real implementation and its packaged fake keep matching the seam's protocol.

isinstance with a runtime_checkable protocol only checks that the names exist; a fake
could drift (a renamed keyword, a lost parameter) and the tests that use it would still
pass. So every protocol method is compared by signature: parameter names, kinds, and
which have defaults.
"""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from mnv3bench.bench.runner import ProbeSensors, Sensors
from mnv3bench.device.adb import AdbDevice
from mnv3bench.device.protocol import Device
from mnv3bench.testing import FakeDevice, FakeSensors


def protocol_members(protocol: type) -> tuple[list[str], list[str]]:
    """(methods, data attributes) a protocol declares, its own and its bases'."""
    methods, attributes = [], []
    for klass in protocol.__mro__:
        if klass in (object, Protocol) or not getattr(klass, "_is_protocol", False):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            (methods if inspect.isfunction(value) else attributes).append(name)
        attributes += [n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_")]
    return sorted(set(methods)), sorted(set(attributes) - set(methods))


def shape(function: object) -> list[tuple[str, inspect._ParameterKind, bool]]:
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(function).parameters.values()]


CASES = [
    (Device, AdbDevice),
    (Device, FakeDevice),
    (Sensors, ProbeSensors),
    (Sensors, FakeSensors),
]


@pytest.mark.parametrize(("protocol", "implementation"), CASES,
                         ids=[f"{i.__name__}-is-a-{p.__name__}" for p, i in CASES])
def test_every_protocol_method_has_the_same_signature(protocol: type, implementation: type) -> None:
    methods, _ = protocol_members(protocol)
    assert methods, f"{protocol.__name__} declares no methods"
    for name in methods:
        assert callable(getattr(implementation, name, None)), f"{implementation.__name__} lacks {name}()"
        assert shape(getattr(implementation, name)) == shape(getattr(protocol, name)), (
            f"{implementation.__name__}.{name}{inspect.signature(getattr(implementation, name))} differs from "
            f"{protocol.__name__}.{name}{inspect.signature(getattr(protocol, name))}")


def test_the_device_protocol_names_what_its_callers_use() -> None:
    methods, attributes = protocol_members(Device)
    assert methods == ["close", "push", "sha256", "shell"]
    assert attributes == ["serial", "transport_name"]


def test_both_devices_are_devices_at_run_time(tmp_path) -> None:
    fake = FakeDevice()
    assert isinstance(fake, Device)
    # A real AdbDevice without a connection: its attributes are set in __init__.
    real = AdbDevice(lambda: (None, None), serial="127.0.0.1:5555", transport_name="tcp")
    assert isinstance(real, Device)
    _, attributes = protocol_members(Device)
    for name in attributes:
        assert hasattr(fake, name) and hasattr(real, name)


def test_the_fake_turns_a_dropped_link_into_the_device_error(tmp_path) -> None:
    from mnv3bench.device.protocol import DeviceLinkError

    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    fake = FakeDevice(lambda graph, n: ConnectionResetError("device offline"))
    fake.push(model, "/data/local/tmp/m.tflite")
    with pytest.raises(DeviceLinkError) as err:
        fake.shell("taskset 10 /data/local/tmp/benchmark_model --graph=/data/local/tmp/m.tflite")
    assert "device offline" in err.value.message and "--resume" in (err.value.hint or "")
    fake.close()
    with pytest.raises(DeviceLinkError, match="closed"):
        fake.sha256("/data/local/tmp/m.tflite")
