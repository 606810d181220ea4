"""Architecture descriptions of decoder-only LLMs, from which a decoder layer is synthesised.

Timing a kernel needs its shapes and precision, not trained weights: a layer with random
weights of the declared shapes runs the same kernels as the real one. A description is a
small YAML file (``archs/NAME.yaml`` ships the paper's Llama-3.2-1B; copy it for another
model). Keys follow Hugging Face's ``config.json`` names so a user can copy them across.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtgen_opt.errors import InputError
from rtgen_opt.safeload import read_yaml_file

ARCH_DIR = Path(__file__).resolve().parent / "archs"
PRECISIONS = ("fp32", "fp16", "int8", "int4")
_INTEGER_KEYS = ("hidden_size", "num_attention_heads", "num_key_value_heads",
                 "intermediate_size", "num_hidden_layers", "vocab_size")
_OPTIONAL_KEYS = ("name", "head_dim", "weight_precision", "block_size", "rms_norm_eps",
                  "description")


@dataclass(frozen=True)
class Architecture:
    """The shapes and weight precision of a decoder-only transformer (Llama family)."""

    name: str
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    num_hidden_layers: int
    vocab_size: int
    weight_precision: str = "fp32"
    block_size: int = 32  # quantisation group along the input dimension (int4, int8)
    rms_norm_eps: float = 1e-5
    source: str = ""

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_dim

    def layer_weight_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of every projection of one decoder layer."""
        h, i = self.hidden_size, self.intermediate_size
        return {"q_proj": (h, self.q_dim), "k_proj": (h, self.kv_dim),
                "v_proj": (h, self.kv_dim), "o_proj": (self.q_dim, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


MAX_ARCHITECTURE_BYTES = 64 * 2**10  # a dozen keys


def builtin_architectures() -> dict[str, Path]:
    return {p.stem: p for p in sorted(ARCH_DIR.glob("*.yaml"))}


def load_architecture(ref: str) -> Architecture:
    """A built-in description by name (``llama3.2-1b``) or a YAML file path."""
    path = builtin_architectures().get(ref) or Path(ref)
    if not path.is_file():
        raise InputError(ref, "", "a built-in architecture "
                         f"({', '.join(builtin_architectures())}) or a YAML file")
    raw = read_yaml_file(path, str(path), "a YAML architecture description",
                         MAX_ARCHITECTURE_BYTES)  # the strict reader, as every input
    return architecture_from_dict(raw, str(path), default_name=path.stem)


def architecture_from_dict(raw: object, source: str, default_name: str = "llm") -> Architecture:
    """Validate a description mapping; errors name the file and the key."""
    if not isinstance(raw, dict):
        raise InputError(source, "", "a mapping of architecture keys", type(raw).__name__)
    unknown = sorted(set(raw) - set(_INTEGER_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise InputError(source, unknown[0], "only the keys "
                         f"{', '.join(_INTEGER_KEYS + _OPTIONAL_KEYS)}")
    values = {key: _positive_int(raw, key, source) for key in _INTEGER_KEYS}
    heads, kv_heads = values["num_attention_heads"], values["num_key_value_heads"]
    if heads % kv_heads:
        raise InputError(source, "num_key_value_heads", f"a divisor of num_attention_heads "
                         f"({heads}) for grouped-query attention", kv_heads)
    head_dim = (_positive_int(raw, "head_dim", source) if "head_dim" in raw
                else values["hidden_size"] // heads)
    if "head_dim" not in raw and values["hidden_size"] % heads:
        raise InputError(source, "head_dim", "a value (hidden_size is not a multiple of "
                         "num_attention_heads)")
    if head_dim % 2:
        raise InputError(source, "head_dim", "an even number (rotary embedding)", head_dim)
    precision = raw.get("weight_precision", "fp32")
    if precision not in PRECISIONS:
        raise InputError(source, "weight_precision", f"one of {', '.join(PRECISIONS)}",
                         precision)
    block = _positive_int(raw, "block_size", source) if "block_size" in raw else 32
    if precision in ("int4", "int8") and (block < 16 or block & (block - 1)):
        raise InputError(source, "block_size", "a power of two >= 16 (quantisation group)",
                         block)
    eps = raw.get("rms_norm_eps", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise InputError(source, "rms_norm_eps", "a positive number", eps)
    return Architecture(name=str(raw.get("name", default_name)), head_dim=head_dim,
                        weight_precision=precision, block_size=block,
                        rms_norm_eps=float(eps), source=source, **values)


def _positive_int(raw: dict, key: str, source: str) -> int:
    if key not in raw:
        raise InputError(source, key, "a value (this key is required)")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(source, key, "an integer >= 1", value)
    return value
