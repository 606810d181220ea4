"""A Llama-style decoder layer and LM head, synthesised with ``onnx.helper``.

Random weights of the declared shapes and precision: the kernels and their shapes are
those of the real model, the values are not (latency does not depend on them). The layer
has the input/output convention of ONNX Runtime GenAI's exported decoders, so the same
timing code runs a user's own exported layer:

- inputs ``hidden_states [batch_size, sequence_length, hidden]``,
  ``past_key``/``past_value [batch_size, kv_heads, past_sequence_length, head_dim]``,
  ``attention_bias [batch_size, 1, sequence_length, total_sequence_length]`` (additive),
  ``cos``/``sin [batch_size, 1, sequence_length, head_dim]`` (rotary tables);
- outputs ``output`` and ``present_key``/``present_value`` (the cache with this step's keys).

Operators: RMSNorm from elementary ops, projections as ``MatMul`` (fp32, fp16) or
``com.microsoft.MatMulNBits`` (int8, int4, with zero points like AWQ), rotary embedding,
grouped-query attention as batched ``MatMul`` over [kv_heads, group] without repeating
the cache, ``Softmax``, SwiGLU MLP.
"""

from __future__ import annotations

import numpy as np

from .architecture import Architecture

OPSET = 17
# MatMulNBits' accuracy_level 4 computes int8 x int8 on CPU: what ONNX Runtime GenAI's
# model builder sets for CPU int4 models. Other providers ignore it.
ACCURACY_LEVEL = 4


class _Graph:
    """Collects nodes and initializers; names are unique by construction."""

    def __init__(self, arch: Architecture, rng: np.random.Generator):
        from onnx import TensorProto

        self.arch, self.rng = arch, rng
        self.float_type = TensorProto.FLOAT16 if arch.weight_precision == "fp16" else \
            TensorProto.FLOAT
        self.np_float = np.float16 if arch.weight_precision == "fp16" else np.float32
        self.nodes, self.initializers = [], []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain,
                                           **attrs))
        return output

    def rms_norm(self, x: str, name: str) -> str:
        weight = self.const(f"{name}.weight", np.ones(self.arch.hidden_size, self.np_float))
        eps = self.const(f"{name}.eps", np.array(self.arch.rms_norm_eps, self.np_float))
        square = self.node("Mul", [x, x], f"{name}.sq")
        mean = self.node("ReduceMean", [square], f"{name}.mean", axes=[-1], keepdims=1)
        root = self.node("Sqrt", [self.node("Add", [mean, eps], f"{name}.add")], f"{name}.rms")
        return self.node("Mul", [self.node("Div", [x, root], f"{name}.div"), weight], name)

    def linear(self, x: str, name: str, k: int, n: int) -> str:
        """x @ W for a W of shape (k, n), in the architecture's weight precision."""
        precision = self.arch.weight_precision
        if precision in ("fp32", "fp16"):
            weight = self.rng.standard_normal((k, n), dtype=np.float32) / np.float32(np.sqrt(k))
            return self.node("MatMul", [x, self.const(f"{name}.weight",
                                                      weight.astype(self.np_float))], name)
        bits = 4 if precision == "int4" else 8
        block = self.arch.block_size
        k_blocks = -(-k // block)
        packed = self.rng.integers(0, 256, (n, k_blocks, block * bits // 8), dtype=np.uint8)
        scales = ((self.rng.random(n * k_blocks, dtype=np.float32) + 0.5)
                  / np.float32(8 * np.sqrt(k)))
        zero_points = self.rng.integers(0, 256, n * (-(-k_blocks * bits // 8)), dtype=np.uint8)
        inputs = [x, self.const(f"{name}.qweight", packed),
                  self.const(f"{name}.scales", scales),
                  self.const(f"{name}.zero_points", zero_points)]
        return self.node("MatMulNBits", inputs, name, domain="com.microsoft", K=k, N=n,
                         bits=bits, block_size=block, accuracy_level=ACCURACY_LEVEL)

    def shape(self, name: str, dims: list[int]) -> str:
        return self.const(name, np.array(dims, dtype=np.int64))

    def model(self, name: str, inputs, outputs):
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="rtgen-opt")
        model.ir_version = 8  # readable by every ONNX Runtime release since 1.10
        return model


def decoder_layer(arch: Architecture, seed: int = 0):
    """One decoder layer of ``arch`` as an ONNX ModelProto (random weights)."""
    from onnx import helper

    g = _Graph(arch, np.random.default_rng(seed))
    h, d = arch.hidden_size, arch.head_dim
    heads, kv_heads = arch.num_attention_heads, arch.num_key_value_heads
    group = heads // kv_heads
    ft = g.float_type
    batch, seq, past, total = ("batch_size", "sequence_length", "past_sequence_length",
                               "total_sequence_length")
    inputs = [
        helper.make_tensor_value_info("hidden_states", ft, [batch, seq, h]),
        helper.make_tensor_value_info("past_key", ft, [batch, kv_heads, past, d]),
        helper.make_tensor_value_info("past_value", ft, [batch, kv_heads, past, d]),
        helper.make_tensor_value_info("attention_bias", ft, [batch, 1, seq, total]),
        helper.make_tensor_value_info("cos", ft, [batch, 1, seq, d]),
        helper.make_tensor_value_info("sin", ft, [batch, 1, seq, d]),
    ]
    outputs = [
        helper.make_tensor_value_info("output", ft, [batch, seq, h]),
        helper.make_tensor_value_info("present_key", ft, [batch, kv_heads, total, d]),
        helper.make_tensor_value_info("present_value", ft, [batch, kv_heads, total, d]),
    ]
    x = g.rms_norm("hidden_states", "input_layernorm")
    shapes = arch.layer_weight_shapes()
    q, k, v = (g.linear(x, f"attn.{p}", *shapes[p]) for p in ("q_proj", "k_proj", "v_proj"))
    q = _heads(g, q, "q", heads)
    k = _heads(g, k, "k", kv_heads)
    v = _heads(g, v, "v", kv_heads)
    q, k = _rotary(g, q, "q"), _rotary(g, k, "k")
    present_k = g.node("Concat", ["past_key", k], "present_key", axis=2)
    present_v = g.node("Concat", ["past_value", v], "present_value", axis=2)
    context = _grouped_attention(g, q, present_k, present_v, kv_heads, group)
    attn_out = g.linear(context, "attn.o_proj", *shapes["o_proj"])
    hidden = g.node("Add", ["hidden_states", attn_out], "attn.residual")
    x = g.rms_norm(hidden, "post_attention_layernorm")
    gate = g.linear(x, "mlp.gate_proj", *shapes["gate_proj"])
    up = g.linear(x, "mlp.up_proj", *shapes["up_proj"])
    silu = g.node("Mul", [gate, g.node("Sigmoid", [gate], "mlp.sigmoid")], "mlp.silu")
    down = g.linear(g.node("Mul", [silu, up], "mlp.act"), "mlp.down_proj",
                    *shapes["down_proj"])
    g.node("Add", [hidden, down], "output")
    return g.model(f"{arch.name}_decoder_layer", inputs, outputs)


def lm_head(arch: Architecture, seed: int = 1):
    """The final norm and vocabulary projection for one token (``hidden [batch, 1, h]``)."""
    from onnx import helper

    g = _Graph(arch, np.random.default_rng(seed))
    ft = g.float_type
    inputs = [helper.make_tensor_value_info("hidden_states", ft, ["batch_size", 1,
                                                                  arch.hidden_size])]
    outputs = [helper.make_tensor_value_info("logits", ft, ["batch_size", 1, arch.vocab_size])]
    x = g.rms_norm("hidden_states", "norm")
    logits = g.linear(x, "lm_head", arch.hidden_size, arch.vocab_size)
    g.node("Identity", [logits], "logits")
    return g.model(f"{arch.name}_lm_head", inputs, outputs)


def _heads(g: _Graph, x: str, name: str, num_heads: int) -> str:
    """[b, s, n*d] -> [b, n, s, d]."""
    split = g.node("Reshape", [x, g.shape(f"{name}.heads_shape",
                                          [0, 0, num_heads, g.arch.head_dim])], f"{name}.split")
    return g.node("Transpose", [split], f"{name}.heads", perm=[0, 2, 1, 3])


def _rotary(g: _Graph, x: str, name: str) -> str:
    """x * cos + rotate_half(x) * sin (the Llama/NeoX convention)."""
    from onnx import helper

    halves = [f"{name}.x1", f"{name}.x2"]  # Split without sizes: two equal halves
    g.nodes.append(helper.make_node("Split", [x], halves, axis=-1, name=f"{name}.halves"))
    rotated = g.node("Concat", [g.node("Neg", [halves[1]], f"{name}.neg"), halves[0]],
                     f"{name}.rot", axis=-1)
    return g.node("Add", [g.node("Mul", [x, "cos"], f"{name}.cos"),
                          g.node("Mul", [rotated, "sin"], f"{name}.sin")], f"{name}.rope")


def _grouped_attention(g: _Graph, q: str, k: str, v: str, kv_heads: int, group: int) -> str:
    """softmax(q k^T / sqrt(d) + bias) v with ``group`` query heads per key/value head."""
    d = g.arch.head_dim
    q5 = g.node("Reshape", [q, g.shape("attn.q5_shape", [0, kv_heads, group, -1, d])], "attn.q5")
    k5 = g.node("Unsqueeze", [k, g.shape("attn.axis2", [2])], "attn.k5")
    v5 = g.node("Unsqueeze", [v, "attn.axis2"], "attn.v5")
    kt = g.node("Transpose", [k5], "attn.kt", perm=[0, 1, 2, 4, 3])
    scores = g.node("MatMul", [q5, kt], "attn.scores")
    scale = g.const("attn.scale", np.array(1 / np.sqrt(d), g.np_float))
    scaled = g.node("Mul", [scores, scale], "attn.scaled")
    bias = g.node("Unsqueeze", ["attention_bias", "attn.axis2"], "attn.bias5")
    probs = g.node("Softmax", [g.node("Add", [scaled, bias], "attn.biased")], "attn.probs",
                   axis=-1)
    context = g.node("MatMul", [probs, v5], "attn.context5")
    heads = g.node("Reshape", [context, g.shape("attn.heads_shape",
                                                [0, kv_heads * group, -1, d])], "attn.heads")
    merged = g.node("Transpose", [heads], "attn.merged", perm=[0, 2, 1, 3])
    return g.node("Reshape", [merged, g.shape("attn.out_shape", [0, 0, kv_heads * group * d])],
                  "attn.context")
