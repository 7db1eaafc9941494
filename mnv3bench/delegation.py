"""Which nodes of a .tflite a delegate takes, and which it leaves to TFLite's own kernels.

A delegate (XNNPACK on the CPU) replaces runs of the nodes it supports with one node per
run, a "partition". Nodes it does not support stay TFLite builtin kernels, and each one
splits the graph: Large int8 with 21 HARD_SWISH nodes left out runs as 22 partitions. A
latency comparison between two models with different coverage may then measure the
delegate's coverage rather than the architecture, so every model and trial reports it.

LiteRT's Python API lists every node of the graph after delegation: the original nodes
(replaced or not) and the delegate nodes appended after them, but not the execution plan.
The plan is recovered exactly by walking back from the graph's outputs: a tensor that a
delegate node outputs is computed by that delegate; any other tensor is computed by its
original producer, which then runs on TFLite's kernels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

XNNPACK_DELEGATE = "TfLiteXNNPackDelegate"
DELEGATE_OP = "DELEGATE"


@dataclass(frozen=True)
class Delegation:
    delegate: str | None  # None: no delegate took any node
    total_nodes: int  # nodes of the model's main graph
    delegated_nodes: int
    partitions: int  # delegate nodes: the runs of supported nodes
    left_out: dict[str, int] = field(default_factory=dict)  # op type -> nodes left to TFLite's kernels
    runtime: str = ""  # the LiteRT that decided it (a phone's binary may decide otherwise)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delegation:
        return cls(**{**data, "left_out": {k: int(v) for k, v in data.get("left_out", {}).items()}})

    def log_line(self) -> str:
        """The line benchmark_model's runtime logs when a delegate is applied."""
        return (f"Replacing {self.delegated_nodes} out of {self.total_nodes} node(s) with delegate "
                f"({self.delegate}) node, yielding {self.partitions} partitions for subgraph 0.")

    def left_out_text(self) -> str:
        """"21 HARD_SWISH, 1 SOFTMAX": most frequent first."""
        return ", ".join(f"{n} {op}" for op, n in sorted(self.left_out.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        if not self.left_out:
            return f"all {self.total_nodes} nodes delegated ({self.partitions} partition(s))"
        return f"{self.left_out_text()} left to TFLite's kernels ({self.partitions} partitions)"


def analyse_interpreter(interpreter: Any, runtime: str = "") -> Delegation:
    """The delegation of an allocated LiteRT Interpreter (after its delegates were applied)."""
    nodes = interpreter._get_ops_details()  # public API has no node list
    delegate_nodes = [n for n in nodes if n["op_name"] == DELEGATE_OP]
    original = [n for n in nodes if n["op_name"] != DELEGATE_OP]
    if not delegate_nodes:
        return Delegation(None, len(original), 0, 0, {}, runtime)

    producer: dict[int, dict[str, Any]] = {}
    for node in original:
        for t in node["outputs"]:
            producer[int(t)] = node
    for node in delegate_nodes:  # a delegate's outputs are computed by the delegate
        for t in node["outputs"]:
            producer[int(t)] = node

    executed: set[int] = set()
    pending = [int(d["index"]) for d in interpreter.get_output_details()]
    seen: set[int] = set()
    while pending:
        tensor = pending.pop()
        if tensor in seen or tensor not in producer:
            continue  # an input, a constant, or already walked
        seen.add(tensor)
        node = producer[tensor]
        if node["index"] not in executed:
            executed.add(node["index"])
            pending.extend(int(t) for t in node["inputs"] if int(t) >= 0)
    left = Counter(n["op_name"] for n in original if n["index"] in executed)
    return Delegation(
        delegate=XNNPACK_DELEGATE,
        total_nodes=len(original),
        delegated_nodes=len(original) - sum(left.values()),
        partitions=len(delegate_nodes),
        left_out=dict(sorted(left.items())),
        runtime=runtime,
    )


def litert_version() -> str:
    import importlib.metadata

    try:
        return "ai-edge-litert " + importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return "ai-edge-litert"


def analyse_model(model: bytes) -> Delegation:
    """How the host's LiteRT applies XNNPACK (its default delegate) to a model, one thread."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, num_threads=1, experimental_op_resolver_type=OpResolverType.AUTO)
    interpreter.allocate_tensors()
    return analyse_interpreter(interpreter, litert_version())


def left_out_on_device(model: dict[str, Any] | None, delegate: str | None,
                       delegated_nodes: int | None, total_nodes: int | None) -> dict[str, int] | None:
    """The ops a trial left to TFLite's kernels, by type, when the device's runtime split the
    graph as the host's analysis of the model did (same delegate, same node counts).

    A phone's binary may be another LiteRT release with other coverage: then its own line
    gives only the counts, and the breakdown by type is unknown (None), never guessed.
    """
    if model is None or delegate is None:
        return None
    host = Delegation.from_json(model)
    if (host.delegate, host.delegated_nodes, host.total_nodes) != (delegate, delegated_nodes, total_nodes):
        return None
    return dict(host.left_out)
