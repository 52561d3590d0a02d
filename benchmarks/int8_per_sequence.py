"""A dynamic-int8 graph rewritten to quantize activations with one scale per sequence (bench_fusion
--per-sequence-int8). Measured, not shipped: docs/fastpath.md, session 9.

The shipped int8 graph (onnx_runtime.quantize_int8) quantizes each matmul's input with one scale and
zero point over the whole padded batch (DynamicQuantizeMatMul, DynamicQuantizeLinear + QAttention), so a
query's features depend on its batch-mates and encoder.rows_alone runs int8 queries one by one. Here
each of those becomes: the sequence's min and max over its real tokens (padding masked out),
QuantizeLinear per batch row (axis 0), MatMulInteger on the same int8 weights, and the zero point's
share (zp * column sums of the weights) taken out before scaling. For a batch of one this is the same
arithmetic as ONNX Runtime's fused kernels; attention runs in MultiHeadAttention on the dequantized
QKV, with the same key lengths QAttention was given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def rewrite(src: Path, dst: Path) -> Path:
    import onnx
    from onnx import TensorProto as TP
    from onnx import helper as H
    from onnx import numpy_helper as NH

    m = onnx.load(str(src))
    g = m.graph
    weights = {i.name: i for i in g.initializer}
    added: list = []
    n_made = [0]

    def name(s: str) -> str:
        n_made[0] += 1
        return f"perseq{n_made[0]}_{s}"

    def const(nm: str, value) -> str:
        added.append(NH.from_array(np.asarray(value), nm))
        return nm

    zero, top = const("perseq_0", np.array(0.0, np.float32)), const("perseq_255", np.array(255.0, np.float32))
    flat, ax2 = const("perseq_flat", np.array([-1], np.int64)), const("perseq_ax2", np.array([2], np.int64))
    mask3 = "perseq_mask3"  # [B, T, 1]: 1 on real tokens
    nodes = [H.make_node("Cast", ["attention_mask"], ["perseq_maskf"], to=TP.FLOAT),
             H.make_node("Unsqueeze", ["perseq_maskf", ax2], [mask3])]

    def quantized_matmul(x: str, wq: str, w_scale: str, w_zp: str, out: str) -> list:
        v = {k: name(k) for k in "xm hi lo hi0 lo0 span scale neg zq zr zp zp8 s1 z1 q y32 yf corr yc mult".split()}
        w = NH.to_array(weights[wq]).astype(np.int64) - NH.to_array(weights[w_zp]).astype(np.int64)
        colsum = const(name("colsum"), w.sum(0).astype(np.float32))
        return [
            H.make_node("Mul", [x, mask3], [v["xm"]]),
            H.make_node("ReduceMax", [v["xm"]], [v["hi"]], axes=[1, 2], keepdims=1),
            H.make_node("ReduceMin", [v["xm"]], [v["lo"]], axes=[1, 2], keepdims=1),
            H.make_node("Max", [v["hi"], zero], [v["hi0"]]), H.make_node("Min", [v["lo"], zero], [v["lo0"]]),
            H.make_node("Sub", [v["hi0"], v["lo0"]], [v["span"]]), H.make_node("Div", [v["span"], top], [v["scale"]]),
            H.make_node("Neg", [v["lo0"]], [v["neg"]]), H.make_node("Div", [v["neg"], v["scale"]], [v["zq"]]),
            H.make_node("Round", [v["zq"]], [v["zr"]]), H.make_node("Clip", [v["zr"], zero, top], [v["zp"]]),
            H.make_node("Cast", [v["zp"]], [v["zp8"]], to=TP.UINT8),
            H.make_node("Reshape", [v["scale"], flat], [v["s1"]]), H.make_node("Reshape", [v["zp8"], flat], [v["z1"]]),
            H.make_node("QuantizeLinear", [x, v["s1"], v["z1"]], [v["q"]], axis=0),
            H.make_node("MatMulInteger", [v["q"], wq, "", w_zp], [v["y32"]]),
            H.make_node("Cast", [v["y32"]], [v["yf"]], to=TP.FLOAT),
            H.make_node("Mul", [v["zp"], colsum], [v["corr"]]), H.make_node("Sub", [v["yf"], v["corr"]], [v["yc"]]),
            H.make_node("Mul", [v["scale"], w_scale], [v["mult"]]), H.make_node("Mul", [v["yc"], v["mult"]], [out]),
        ]

    quantized_from: dict[str, str] = {}
    kinds = {"DynamicQuantizeMatMul": 0, "QAttention": 0}
    for n in g.node:
        if n.op_type == "DynamicQuantizeLinear":
            quantized_from[n.output[0]] = n.input[0]
        elif n.op_type == "DynamicQuantizeMatMul":
            a, wq, ws, wz = n.input[:4]
            bias = n.input[4] if len(n.input) > 4 and n.input[4] else ""
            out = name("nobias") if bias else n.output[0]
            nodes += quantized_matmul(a, wq, ws, wz, out)
            if bias:
                nodes.append(H.make_node("Add", [out, bias], [n.output[0]]))
            kinds[n.op_type] += 1
        elif n.op_type == "QAttention":
            xq, wq, bias, _, ws, lengths, _, wz = n.input[:8]
            qkv0, qkv, q, k, v = (name(s) for s in ("qkv0", "qkv", "q", "k", "v"))
            heads = next(a.i for a in n.attribute if a.name == "num_heads")
            nodes += quantized_matmul(quantized_from[xq], wq, ws, wz, qkv0)
            nodes += [H.make_node("Add", [qkv0, bias], [qkv]), H.make_node("Split", [qkv], [q, k, v], axis=2),
                      H.make_node("MultiHeadAttention", [q, k, v, "", lengths], [n.output[0]], domain="com.microsoft",
                                  num_heads=heads)]
            kinds[n.op_type] += 1
        else:
            nodes.append(n)
    if not all(kinds.values()):
        raise SystemExit(f"not the fused dynamic-int8 graph this rewrite knows (found {kinds})")
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(added)
    onnx.save_model(m, str(dst), save_as_external_data=True, all_tensors_to_one_file=True, location=dst.name + ".data")
    return dst
