"""mnv3bench: measure how MobileNetV3's design choices change its latency on a phone.

The Python API (mnv3bench/api.py) is importable from here; importing it loads no TensorFlow
or pandas.
"""

__version__ = "0.1.0"

from mnv3bench.api import (
    build_models,
    make_table,
    read_sessions,
    read_trials,
    run,
    run_phones,
    table_result,
)

__all__ = ["__version__", "build_models", "make_table", "read_sessions", "read_trials", "run", "run_phones",
           "table_result"]
