"""MnvError crosses process boundaries (worker pools pickle it) with everything it carries."""

from __future__ import annotations

import pickle

import pytest

from mnv3bench.errors import EXIT_USAGE, MnvError, UsageError


class NeedsAPath(MnvError):
    """A subclass whose __init__ takes other arguments than (message, hint)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}", "Check the path.")
        self.path = path


def roundtrip(error: MnvError) -> MnvError:
    return pickle.loads(pickle.dumps(error))


@pytest.mark.parametrize("error", [
    MnvError("the phone is gone", "Replug it."),
    MnvError("no hint"),
    MnvError("a custom status", "Run it again.", exit_code=7),
    UsageError("bad --trials", "Use --trials 5."),
])
def test_message_hint_and_exit_code_survive_pickling(error: MnvError) -> None:
    back = roundtrip(error)
    assert type(back) is type(error)
    assert (back.message, back.hint, back.exit_code, str(back)) == (error.message, error.hint, error.exit_code,
                                                                     str(error))
    assert back.args == error.args


def test_usage_error_stays_a_usage_error() -> None:
    back = roundtrip(UsageError("bad name", "Pick one from `mnv3bench variants`."))
    assert isinstance(back, UsageError) and back.exit_code == EXIT_USAGE


def test_a_subclass_with_its_own_init_pickles_with_its_fields() -> None:
    back = roundtrip(NeedsAPath("/x/model.tflite", "no such file"))
    assert isinstance(back, NeedsAPath)
    assert back.message == "cannot read /x/model.tflite: no such file" and back.hint == "Check the path."
    assert back.path == "/x/model.tflite"
