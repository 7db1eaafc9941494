"""Attribution of op-profile rows to the network's blocks (profile/blocks.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mnv3bench.bench.parser import parse_benchmark_output
from mnv3bench.flops import count, madds_by_block
from mnv3bench.profile.blocks import (
    DEPTHWISE,
    EXPAND,
    PROJECT,
    SQUEEZE_EXCITE,
    Place,
    attribute,
    network_map,
)
from mnv3bench.variants import parse_variant
from tests.helpers import SMALL

FIXTURES = Path(__file__).parents[1] / "fixtures" / "benchmark_outputs"
SCOPE = "mnv3bench_large_hswish_fused_r96_1/"


def row(node_type: str, name: str, ms: float = 1.0) -> dict[str, object]:
    return {"node_type": node_type, "name": name, "avg_ms": ms, "times_called": 1}


def test_per_block_madds_add_up_to_the_network() -> None:
    for name in ("large", "small", "large-hswish-fused-original", "v2-1.0"):
        variant = parse_variant(name)
        by_block = madds_by_block(network_map(variant).spec)
        assert sum(by_block.values()) == count(variant).madds
    large, original = (madds_by_block(network_map(parse_variant(v)).spec)
                       for v in ("large", "large-hswish-fused-original"))
    assert len([b for b in large if b.startswith("bottleneck")]) == 15
    assert original["last stage"] - large["last stage"] == 34_317_760  # the paper's "30M" saving


def test_tensor_names_map_to_layers_with_the_scope_suffix() -> None:
    net = network_map(parse_variant("large-hswish-fused-r96"))
    place = net.place_of_tensor
    # The stem is "conv": with the scope's "_1" its tensors read "conv_1", which is not the last stage.
    assert place(SCOPE + "conv_bn_1/batchnorm/add_1;" + SCOPE + "conv_1/convolution") == Place("stem", "conv")
    assert place(SCOPE + "conv_1_1/convolution") == Place("last stage", "conv_1")
    assert place(SCOPE + "re_lu_35_1/Relu;" + SCOPE + "expanded_conv_1_depthwise_bn_1/batchnorm/add_1") == \
        Place("bottleneck 2", DEPTHWISE)
    assert place(SCOPE + "expanded_conv_expand_1/x") is None  # block 1 of Large has no expansion layer...
    assert place(SCOPE + "expanded_conv_3_squeeze_excite_conv_1_1/BiasAdd") == Place("bottleneck 4", SQUEEZE_EXCITE)
    assert place(SCOPE + "expanded_conv_14_add_1/Add") == Place("bottleneck 15", PROJECT)
    assert place(SCOPE + "rescaling_1_1/mul") == Place("input", "rescale")
    assert place(SCOPE + "activation_7_1/mul") is None


def test_unnamed_ops_take_the_place_of_the_op_they_follow() -> None:
    net = network_map(parse_variant("large-hswish-naive-r96"))
    rows = [row("CONV_2D", SCOPE + "expanded_conv_6_expand_1/convolution", 2.0),
            row("ADD", SCOPE + "add_40_1/Add"), row("MUL", SCOPE + "multiply_3_1/Mul"),
            row("MUL", SCOPE + "multiply_3_1/Mul_1"),
            row("DEPTHWISE_CONV_2D", SCOPE + "expanded_conv_6_depthwise_1/depthwise", 3.0)]
    result = attribute(rows, net)
    block = result.block("bottleneck 7")
    assert block.parts == {EXPAND: 5.0, DEPTHWISE: 3.0} and block.ops == 5
    assert result.unattributed_ms == 0 and result.total_ms == 8.0


def test_real_xnnpack_csv_rows_map_in_operator_order() -> None:
    # A phone's CSV op profile of a MobileNetV3 (first rows only): stem conv + h-swish, then
    # bottleneck 1's depthwise and its SE pooling (Small's first block: no expansion, SE).
    rows = parse_benchmark_output((FIXTURES / "18.txt").read_text()).op_profile_rows
    result = attribute(rows, network_map(parse_variant("small")))
    places = [place for _, place in result.rows]
    assert places == [Place("stem", "conv"), Place("stem", "conv"), Place("bottleneck 1", DEPTHWISE),
                      Place("bottleneck 1", SQUEEZE_EXCITE)]
    assert result.unattributed_ms == 0


def test_a_delegate_operator_out_of_order_is_unattributed_not_guessed() -> None:
    net = network_map(parse_variant("small"))
    rows = [row("Convolution (NHWC, F32) IGEMM", "Delegate/Convolution (NHWC, F32) IGEMM:0"),
            row("Fully Connected (NC, F32) GEMM", "Delegate/Fully Connected (NC, F32) GEMM:1"),  # expected DWConv
            row("HardSwish (NC)", "Delegate/HardSwish (NC):2"),
            row("Convolution (NHWC, F32) DWConv", "Delegate/Convolution (NHWC, F32) DWConv:3")]
    result = attribute(rows, net)
    assert result.block("stem").ms == 1.0
    assert result.unattributed_ms == 3.0 and result.unattributed_share == 0.75


def test_runtime_rows_are_kept_apart() -> None:
    rows = parse_benchmark_output((FIXTURES / "15.txt").read_text()).op_profile_rows
    result = attribute(rows, network_map(parse_variant("small")))
    assert result.runtime_ms == pytest.approx(0.014 + 0.291 + 0.012)


def _standin_rows(graph: Path, xnnpack: bool) -> list[dict[str, object]]:
    run = subprocess.run([sys.executable, "-m", "mnv3bench.emulator.standin", f"--graph={graph}", "--num_threads=1",
                          "--num_runs=3", "--min_secs=0", "--warmup_min_secs=0", "--warmup_runs=1",
                          f"--use_xnnpack={str(xnnpack).lower()}", "--enable_op_profiling=true"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return parse_benchmark_output(run.stdout).op_profile_rows


@pytest.mark.parametrize("xnnpack", [False, True], ids=["builtin", "xnnpack"])
def test_emulator_profile_of_a_real_model_is_attributed(small_model: Path, xnnpack: bool) -> None:
    graph = next(small_model.glob("*.tflite"))
    variant = parse_variant(SMALL)
    result = attribute(_standin_rows(graph, xnnpack), network_map(variant))
    assert result.unattributed_share == 0.0
    names = [b.name for b in result.blocks]
    assert names == ["input", "stem", *(f"bottleneck {i}" for i in range(1, 12)), "last stage", "classifier"]
    assert all(b.ops > 0 and b.ms > 0 for b in result.blocks)
    se = [b for b in result.blocks if SQUEEZE_EXCITE in b.parts]
    assert len(se) == 9  # Table 2: every Small bottleneck but the 2nd and 3rd has SE
