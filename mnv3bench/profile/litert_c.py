"""LiteRT's C API over ctypes: compile a .tflite, run it, read the per-op profiler.

The ai-edge-litert wheel's Python API has no profiler, but the wheel ships libLiteRt.so
with LiteRT's C API, profiler included (headers litert/c/litert_profiler.h and litert_profiler_event.h). Structs and
option strings are mirrored by hand here, so the wheel's version range is pinned in
pyproject.toml, and `LiteRtSession.self_check` fails loudly when a release ignores them.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ProfiledEventData.event_type (litert/c/litert_profiler_event.h)
EVENT_OPERATOR = 2
EVENT_DELEGATE_OPERATOR = 4
EVENT_DELEGATE_PROFILED_OPERATOR = 8
EVENT_RUNTIME = 16
OPERATOR_EVENTS = (EVENT_OPERATOR, EVENT_DELEGATE_OPERATOR, EVENT_DELEGATE_PROFILED_OPERATOR)

_ACCELERATOR_CPU = 1
_LOCK_WRITE = 1
# LiteRtRankedTensorType is {element type; LiteRtLayout {rank:7, has_strides:1; int32 dims[8];
# uint32 strides[8]}} = 72 bytes; a larger opaque buffer is passed back to the runtime untouched.
_TENSOR_TYPE_BYTES = 256
_DIMS_OFFSET = 8
_MAX_RANK = 8


class LiteRtError(RuntimeError):
    """A LiteRT C call failed, or the runtime did not take the options it was given."""


class _MemoryUsage(ctypes.Structure):
    _fields_ = [("total_allocated_bytes", ctypes.c_size_t),
                ("in_use_allocated_bytes", ctypes.c_size_t),
                ("private_footprint_bytes", ctypes.c_size_t)]


class ProfiledEventData(ctypes.Structure):
    """litert/c/litert_profiler_event.h, as of ai-edge-litert 2.3."""

    _fields_ = [("tag", ctypes.c_char_p),
                ("event_type", ctypes.c_int),
                ("start_timestamp_us", ctypes.c_uint64),
                ("elapsed_time_us", ctypes.c_uint64),
                ("begin_mem_usage", _MemoryUsage),
                ("end_mem_usage", _MemoryUsage),
                ("event_metadata1", ctypes.c_uint64),
                ("event_metadata2", ctypes.c_uint64),
                ("event_source", ctypes.c_int)]


@dataclass(frozen=True)
class OpEvent:
    """One profiled operator invocation."""

    tag: str  # TFLite op name (builtin kernels) or XNNPACK operator name
    event_type: int
    start_us: int
    elapsed_us: int
    node_index: int  # event_metadata1: TFLite node (builtin) or XNNPACK operator index


def library_path() -> Path:
    import ai_edge_litert

    return Path(ai_edge_litert.__file__).parent / "libLiteRt.so"


def litert_version() -> str:
    from importlib.metadata import version

    return version("ai-edge-litert")


_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)
_FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library_path()))
    sigs: dict[str, tuple[Any, ...]] = {
        "LiteRtCreateEnvironment": (ctypes.c_int, _P, _PP),
        "LiteRtCreateModelFromFile": (_P, ctypes.c_char_p, _PP),
        "LiteRtCreateOptions": (_PP,),
        "LiteRtSetOptionsHardwareAccelerators": (_P, ctypes.c_int),
        "LiteRtCreateOpaqueOptions": (ctypes.c_char_p, _P, _FREE_FN, _PP),
        "LiteRtAddOpaqueOptions": (_P, _P),
        "LiteRtCreateCompiledModel": (_P, _P, _P, _PP),
        "LiteRtGetModelSignature": (_P, ctypes.c_size_t, _PP),
        "LiteRtGetNumSignatureInputs": (_P, ctypes.POINTER(ctypes.c_size_t)),
        "LiteRtGetNumSignatureOutputs": (_P, ctypes.POINTER(ctypes.c_size_t)),
        "LiteRtGetSignatureInputTensorByIndex": (_P, ctypes.c_size_t, _PP),
        "LiteRtGetSignatureOutputTensorByIndex": (_P, ctypes.c_size_t, _PP),
        "LiteRtGetRankedTensorType": (_P, ctypes.c_char_p),
        "LiteRtCompiledModelResizeInputTensor": (_P, ctypes.c_size_t, ctypes.c_size_t,
                                                 ctypes.POINTER(ctypes.c_int), ctypes.c_size_t),
        "LiteRtGetCompiledModelInputBufferRequirements": (_P, ctypes.c_size_t, ctypes.c_size_t, _PP),
        "LiteRtGetCompiledModelOutputBufferRequirements": (_P, ctypes.c_size_t, ctypes.c_size_t, _PP),
        "LiteRtGetCompiledModelOutputTensorLayouts": (_P, ctypes.c_size_t, ctypes.c_size_t,
                                                      ctypes.c_char_p, ctypes.c_bool),
        "LiteRtCreateManagedTensorBufferFromRequirements": (_P, ctypes.c_char_p, _P, _PP),
        "LiteRtGetTensorBufferSize": (_P, ctypes.POINTER(ctypes.c_size_t)),
        "LiteRtLockTensorBuffer": (_P, _PP, ctypes.c_int),
        "LiteRtUnlockTensorBuffer": (_P,),
        "LiteRtRunCompiledModel": (_P, ctypes.c_size_t, ctypes.c_size_t, _PP, ctypes.c_size_t, _PP),
        "LiteRtCompiledModelGetProfiler": (_P, _PP),
        "LiteRtStartProfiler": (_P,),
        "LiteRtStopProfiler": (_P,),
        "LiteRtResetProfiler": (_P,),
        "LiteRtGetNumProfilerEvents": (_P, ctypes.POINTER(ctypes.c_int)),
        "LiteRtGetProfilerEvents": (_P, ctypes.c_int, ctypes.POINTER(ProfiledEventData)),
        "LiteRtGetMainModelSubgraphIndex": (_P, ctypes.POINTER(ctypes.c_size_t)),
        "LiteRtGetModelSubgraph": (_P, ctypes.c_size_t, _PP),
        "LiteRtGetNumSubgraphOps": (_P, ctypes.POINTER(ctypes.c_size_t)),
        "LiteRtGetSubgraphOp": (_P, ctypes.c_size_t, _PP),
        "LiteRtGetNumOpOutputs": (_P, ctypes.POINTER(ctypes.c_size_t)),
        "LiteRtGetOpOutput": (_P, ctypes.c_size_t, _PP),
        "LiteRtGetOpCode": (_P, ctypes.POINTER(ctypes.c_int)),
        "LiteRtGetTensorName": (_P, ctypes.POINTER(ctypes.c_char_p)),
    }
    for name, argtypes in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = list(argtypes)
        fn.restype = ctypes.c_int
    for name in ("LiteRtDestroyEnvironment", "LiteRtDestroyModel", "LiteRtDestroyOptions",
                 "LiteRtDestroyCompiledModel", "LiteRtDestroyTensorBuffer"):
        getattr(lib, name).argtypes = [_P]
        getattr(lib, name).restype = None
    return lib


_LIB: ctypes.CDLL | None = None
_LIBC = ctypes.CDLL(None)
_LIBC.strdup.restype = ctypes.c_void_p
_LIBC.strdup.argtypes = [ctypes.c_char_p]
_LIBC_FREE = _FREE_FN(("free", _LIBC))


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = _load()
    return _LIB


def _check(status: int, what: str) -> None:
    if status != 0:
        raise LiteRtError(f"{what} failed (LiteRT status {status})")


def cpu_options_toml(num_threads: int, builtin_kernels: bool) -> str:
    """The CPU ("xnnpack") opaque options' TOML payload."""
    text = f"num_threads = {num_threads}\n" if num_threads > 0 else ""
    return text + ('kernel_mode = "builtin"\n' if builtin_kernels else "")


RUNTIME_OPTIONS_TOML = "enable_profiling = true\n"


class LiteRtSession:
    """One compiled model with its input and output buffers and its profiler."""

    def __init__(self, graph: str | os.PathLike[str], num_threads: int, builtin_kernels: bool) -> None:
        lib = _lib()
        self.builtin_kernels = builtin_kernels
        self.num_threads = num_threads
        self._env = _P()
        self._model = _P()
        self._cm = _P()
        self._options = _P()
        _check(lib.LiteRtCreateEnvironment(0, None, ctypes.byref(self._env)), "LiteRtCreateEnvironment")
        _check(lib.LiteRtCreateModelFromFile(self._env, os.fsencode(graph), ctypes.byref(self._model)),
               f"loading {graph}")
        _check(lib.LiteRtCreateOptions(ctypes.byref(self._options)), "LiteRtCreateOptions")
        _check(lib.LiteRtSetOptionsHardwareAccelerators(self._options, _ACCELERATOR_CPU), "CPU accelerator")
        cpu_toml = cpu_options_toml(num_threads, builtin_kernels)
        if cpu_toml:  # an empty payload fails compilation
            self._add_opaque("xnnpack", cpu_toml)
        self._add_opaque("runtime_options_string", RUNTIME_OPTIONS_TOML)
        _check(lib.LiteRtCreateCompiledModel(self._env, self._model, self._options, ctypes.byref(self._cm)),
               "LiteRtCreateCompiledModel")
        self._inputs, self._outputs = self._make_buffers()
        self._profiler = _P()
        _check(lib.LiteRtCompiledModelGetProfiler(self._cm, ctypes.byref(self._profiler)),
               "LiteRtCompiledModelGetProfiler")
        if not self._profiler:
            raise LiteRtError("the compiled model has no profiler: enable_profiling was not taken")

    def _add_opaque(self, identifier: str, toml: str) -> None:
        lib = _lib()
        opaque = _P()
        payload = _LIBC.strdup(toml.encode())
        _check(lib.LiteRtCreateOpaqueOptions(identifier.encode(), payload, _LIBC_FREE, ctypes.byref(opaque)),
               f"opaque options {identifier}")
        _check(lib.LiteRtAddOpaqueOptions(self._options, opaque), f"adding options {identifier}")

    def _make_buffers(self) -> tuple[Any, Any]:
        import numpy as np

        lib = _lib()
        signature = _P()
        _check(lib.LiteRtGetModelSignature(self._model, 0, ctypes.byref(signature)), "signature 0")
        counts = {}
        for side, fn in (("in", lib.LiteRtGetNumSignatureInputs), ("out", lib.LiteRtGetNumSignatureOutputs)):
            n = ctypes.c_size_t()
            _check(fn(signature, ctypes.byref(n)), "signature size")
            counts[side] = n.value
        types_in = [self._tensor_type(lib.LiteRtGetSignatureInputTensorByIndex, signature, i)
                    for i in range(counts["in"])]
        for i, raw in enumerate(types_in):
            dims = self._dims(raw)
            if any(d < 0 for d in dims):  # Keras exports a dynamic batch: fix it to 1
                fixed = (ctypes.c_int * len(dims))(*[d if d >= 0 else 1 for d in dims])
                _check(lib.LiteRtCompiledModelResizeInputTensor(self._cm, 0, i, fixed, len(dims)),
                       "resizing an input")
                self._set_dims(raw, list(fixed))
        types_out = [self._tensor_type(lib.LiteRtGetSignatureOutputTensorByIndex, signature, i)
                     for i in range(counts["out"])]
        if counts["out"] and any(any(d < 0 for d in self._dims(raw)) for raw in types_out):
            layouts = ctypes.create_string_buffer(_TENSOR_TYPE_BYTES * counts["out"])
            _check(lib.LiteRtGetCompiledModelOutputTensorLayouts(self._cm, 0, counts["out"], layouts, True),
                   "output layouts")
            for raw in types_out:
                self._set_dims(raw, [d if d >= 0 else 1 for d in self._dims(raw)])
        self._keep = (types_in, types_out)
        inputs = (_P * counts["in"])()
        outputs = (_P * counts["out"])()
        rng = np.random.default_rng(0)
        for arr, types, req_fn in ((inputs, types_in, lib.LiteRtGetCompiledModelInputBufferRequirements),
                                   (outputs, types_out, lib.LiteRtGetCompiledModelOutputBufferRequirements)):
            for i, raw in enumerate(types):
                req = _P()
                _check(req_fn(self._cm, 0, i, ctypes.byref(req)), "buffer requirements")
                buf = _P()
                _check(lib.LiteRtCreateManagedTensorBufferFromRequirements(self._env, raw, req, ctypes.byref(buf)),
                       "creating a tensor buffer")
                arr[i] = buf
        for i in range(counts["in"]):  # random bytes: the timing does not depend on values
            size = ctypes.c_size_t()
            _check(lib.LiteRtGetTensorBufferSize(inputs[i], ctypes.byref(size)), "buffer size")
            host = _P()
            _check(lib.LiteRtLockTensorBuffer(inputs[i], ctypes.byref(host), _LOCK_WRITE), "locking an input")
            data = rng.uniform(-1.0, 1.0, size.value // 4).astype(np.float32).tobytes()
            ctypes.memmove(host, data, min(len(data), size.value))
            _check(lib.LiteRtUnlockTensorBuffer(inputs[i]), "unlocking an input")
        return inputs, outputs

    @staticmethod
    def _tensor_type(fn: Any, signature: Any, index: int) -> Any:
        tensor = _P()
        _check(fn(signature, index, ctypes.byref(tensor)), "signature tensor")
        raw = ctypes.create_string_buffer(_TENSOR_TYPE_BYTES)
        _check(_lib().LiteRtGetRankedTensorType(tensor, raw), "tensor type")
        return raw

    @staticmethod
    def _dims(raw: Any) -> list[int]:
        rank = raw.raw[4] & 0x7F
        dims = (ctypes.c_int32 * _MAX_RANK).from_buffer(raw, _DIMS_OFFSET)
        return list(dims[:rank])

    @staticmethod
    def _set_dims(raw: Any, dims: list[int]) -> None:
        target = (ctypes.c_int32 * _MAX_RANK).from_buffer(raw, _DIMS_OFFSET)
        for i, d in enumerate(dims):
            target[i] = d

    def invoke(self) -> None:
        _check(_lib().LiteRtRunCompiledModel(self._cm, 0, len(self._inputs), self._inputs,
                                             len(self._outputs), self._outputs), "LiteRtRunCompiledModel")

    def profile(self, runs: int) -> list[OpEvent]:
        """Operator events of `runs` profiled runs (the profiler is off outside this call)."""
        lib = _lib()
        _check(lib.LiteRtResetProfiler(self._profiler), "LiteRtResetProfiler")
        _check(lib.LiteRtStartProfiler(self._profiler), "LiteRtStartProfiler")
        try:
            for _ in range(runs):
                self.invoke()
        finally:
            _check(lib.LiteRtStopProfiler(self._profiler), "LiteRtStopProfiler")
        return self.events()

    def events(self) -> list[OpEvent]:
        lib = _lib()
        n = ctypes.c_int()
        _check(lib.LiteRtGetNumProfilerEvents(self._profiler, ctypes.byref(n)), "event count")
        if n.value <= 0:
            return []
        raw = (ProfiledEventData * n.value)()
        _check(lib.LiteRtGetProfilerEvents(self._profiler, n.value, raw), "LiteRtGetProfilerEvents")
        return [OpEvent((e.tag or b"").decode(errors="replace"), e.event_type, int(e.start_timestamp_us),
                        int(e.elapsed_time_us), int(e.event_metadata1)) for e in raw]

    def node_outputs(self) -> list[tuple[int, str]]:
        """(TFLite builtin op code, first output tensor name) of each node of the main subgraph."""
        lib = _lib()
        index = ctypes.c_size_t()
        _check(lib.LiteRtGetMainModelSubgraphIndex(self._model, ctypes.byref(index)), "main subgraph")
        subgraph = _P()
        _check(lib.LiteRtGetModelSubgraph(self._model, index.value, ctypes.byref(subgraph)), "subgraph")
        n = ctypes.c_size_t()
        _check(lib.LiteRtGetNumSubgraphOps(subgraph, ctypes.byref(n)), "op count")
        nodes = []
        for i in range(n.value):
            op = _P()
            _check(lib.LiteRtGetSubgraphOp(subgraph, i, ctypes.byref(op)), "op")
            code = ctypes.c_int()
            _check(lib.LiteRtGetOpCode(op, ctypes.byref(code)), "op code")
            tensor = _P()
            _check(lib.LiteRtGetOpOutput(op, 0, ctypes.byref(tensor)), "op output")
            name = ctypes.c_char_p()
            _check(lib.LiteRtGetTensorName(tensor, ctypes.byref(name)), "tensor name")
            nodes.append((code.value, (name.value or b"").decode(errors="replace")))
        return nodes
