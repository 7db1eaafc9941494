"""parse_benchmark_output never raises, whatever the text: random text and shuffled real lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnv3bench.bench.parser import JSON_KEYS, parse_benchmark_output
from tests.helpers import BENCHMARK_OUTPUTS as FIXTURES

pytestmark = pytest.mark.fuzz

REAL_LINES = sorted({line for path in FIXTURES.glob("*.txt") for line in path.read_text().splitlines()})
FRAGMENTS = [
    "count=", "first=", "curr=", "avg=", "std=", "median=", "(all same)", "1e+999", "nan", "-3",
    "2.95034e+06", "INFO: ", "ERROR: ", "I tflite  : ", "\t", "[", "]", ":", "=====", "%", "\r",
    "Running benchmark for at least 1 iterations", "Inference timings in us: ", "Init: ",
    "Top by Computation Time", "Summary by node type", "[node type]", "[avg ms]", "[%]",
]

# A line glued together from pieces of the syntax the parser looks for.
GLUED_FRAGMENTS = st.lists(st.sampled_from(FRAGMENTS + list("0123456789. x")), max_size=12).map("".join)


def check(text: str) -> None:
    result = parse_benchmark_output(text)
    data = result.to_json()
    assert list(data) == list(JSON_KEYS)
    json.dumps(data, allow_nan=False)  # no NaN/inf slips into the results
    if result.error:
        assert result.inference_avg_us is None and result.error_message
    else:
        assert result.inference_avg_us is not None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_random_text_never_raises(text: str) -> None:
    check(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(REAL_LINES) | GLUED_FRAGMENTS, max_size=60))
def test_shuffled_real_lines_never_raise(lines: list[str]) -> None:
    check("\n".join(lines))
