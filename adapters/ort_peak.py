"""This machine's fp32 and int8 GEMM peaks through ONNX Runtime's own kernels (MLAS), beside numpy's and torch's.

numpy's OpenBLAS and torch's MKL choose their kernels by CPU model, and on a CPU they do not know they fall back:
on the Zen 5 host (family 26) OpenBLAS 0.3.31 runs its Haswell (AVX2) kernels, so numpy's fp32 "peak" was half
of what ONNX Runtime and DeepSparse reached in whole models (%_of_peak above 100). MLAS dispatches on the ISA
flags themselves, so its MatMul is the fp32 yardstick that holds on a new CPU; the report takes the best.
"""

from __future__ import annotations

import time

import numpy as np

from bench.environment import native_support

SLOW_S = 1.0


def _session(op: str, a_type: int, b: np.ndarray, out_type: int, n: int, threads: int):
    """One MatMul whose B is a constant, as a model's weights are: ONNX Runtime packs it once at load."""
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    graph = helper.make_graph([helper.make_node(op, ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info("a", a_type, [n, n])],
                              [helper.make_tensor_value_info("c", out_type, [n, n])],
                              initializer=[numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def measure(threads: int, n: int = 2048, repeats: int = 8) -> dict[str, dict]:
    """{precision: {"gflops" (GOP/s for int8), "n", "threads", "repeats", "op", ...}}: fp32 MatMul always, int8
    MatMulInteger (u8 x s8 -> int32, the dynamic-INT8 kernels) where the CPU has VNNI."""
    import onnxruntime as ort
    from onnx import TensorProto

    rng = np.random.default_rng(0)
    cases = {"fp32": ("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT,
                      rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32))}
    if native_support("int8"):
        cases["int8"] = ("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32,
                         rng.integers(0, 256, (n, n), dtype=np.uint8), rng.integers(-128, 128, (n, n), dtype=np.int8))
    out: dict[str, dict] = {}
    for precision, (op, ta, _tb, tc, a, b) in cases.items():
        session = _session(op, ta, b, tc, n, threads)
        feed = {"a": a}
        t0 = time.perf_counter()
        session.run(None, feed)  # thread pool, packing buffers
        if time.perf_counter() - t0 > SLOW_S:
            out.setdefault("skipped", {})[precision] = f"onnxruntime {op} too slow at n={n}: not a native kernel"
            continue
        best = min(_time(lambda s=session, f=feed: s.run(None, f)) for _ in range(repeats))
        out[precision] = {"gflops": 2 * n**3 / best / 1e9, "n": n, "threads": threads, "repeats": repeats,
                          "op": f"onnxruntime {op} (MLAS)", "onnxruntime": ort.__version__}
    return out


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
