"""Export a PEFT LoRA (trained on the transformers base from training/hf.py) as a GGUF LoRA adapter.

llama.cpp loads the file with `llama_adapter_lora_init` and applies it on the quantized base at run
time (inference/backends/llama.py::use_adapter). What is written:

- KV: `general.architecture` copied from the base GGUF, `general.type = "adapter"`,
  `adapter.type = "lora"`, `adapter.lora.alpha = lora_alpha` (float32).
- For every LoRA-wrapped Linear, two tensors named after the base tensor they modify
  (`blk.<i>.attn_q.weight.lora_a` / `.lora_b`, names mapped with gguf's TensorNameMap):
  `lora_a` = PEFT's A, torch shape (r, in) -> ggml ne [in, r]; `lora_b` = PEFT's B, torch shape
  (out, r) -> ggml ne [r, out]; float32 (or float16 with `dtype="f16"`). Each pair is checked
  against the base tensor's shape before anything is written.

Rope layout, decided per architecture in one place (PERMUTES_QK). For llama, llama.cpp's
convert_hf_to_gguf permutes the output rows of q_proj and k_proj (LlamaModel.permute:
`reshape(n_head, 2, head_dim/2, in).swapaxes(1, 2)`, n_head_kv heads for k) because llama.cpp runs
llama's rope on interleaved pairs, and transformers' GGUF loader undoes it (LlamaTensorProcessor), so
the HF model PEFT trained sees un-permuted rows. A LoRA delta B @ A for q/k must therefore get its rows
permuted the same way before llama.cpp adds it: B's rows are permuted (A is untouched), as
convert_lora_to_gguf.py does. For qwen2, convert_hf_to_gguf writes q/k as they are (Qwen2Model keeps
the base modify_tensors; llama.cpp runs qwen2's rope in the NEOX, rotate-half layout HF uses) and
transformers loads them as they are (no tensor processor for qwen2), so its LoRA is written unpermuted.
qwen2's q/k/v biases belong to the base model and are not touched: LoRA wraps the Linear's weight
(`blk.<i>.attn_q.weight.lora_a` / `.lora_b`), and llama.cpp adds the bias after the LoRA'd product,
as PEFT does.

Scale. llama.cpp computes a LoRA layer as `W x + s * B (A x)` with
`s = adapter_scale * alpha / rank` when `adapter.lora.alpha` is non-zero (rank = B's inner size),
exactly PEFT's `scaling = lora_alpha / r` at adapter_scale 1.0 (the AdapterRef.scale the backend
passes). Where PEFT's scaling differs from alpha / r (use_rslora: alpha / sqrt(r); alpha_pattern),
the ratio is folded into that layer's B, so llama.cpp applies the same delta.

Refused (ValueError naming the reason) rather than exported wrong: DoRA and other LoRA variants,
LoRA biases, modules_to_save, trainable tokens, target_parameters, embedding / conv LoRA, fan-in-fan-out
layers, targets other than q/k/v/o/gate/up/down projections (lm_head, embed_tokens), architectures
other than llama and qwen2, and shapes that do not match the base GGUF.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import gguf
import numpy as np

from inference.integrity import sha256_file

if TYPE_CHECKING:
    from peft import PeftModel

# The architectures the export supports, and whether llama.cpp's convert_hf_to_gguf permuted their
# q/k rows (what transformers' GGUF loader undoes: its TENSOR_PROCESSORS maps "llama" to
# LlamaTensorProcessor, which reverses the permutation, and has no processor for "qwen2").
PERMUTES_QK: dict[str, bool] = {"llama": True, "qwen2": False}
SUPPORTED_ARCHS = frozenset(PERMUTES_QK)
SUPPORTED_TENSORS = {
    gguf.MODEL_TENSOR.ATTN_Q: "q_proj",
    gguf.MODEL_TENSOR.ATTN_K: "k_proj",
    gguf.MODEL_TENSOR.ATTN_V: "v_proj",
    gguf.MODEL_TENSOR.ATTN_OUT: "o_proj",
    gguf.MODEL_TENSOR.FFN_GATE: "gate_proj",
    gguf.MODEL_TENSOR.FFN_UP: "up_proj",
    gguf.MODEL_TENSOR.FFN_DOWN: "down_proj",
}
_PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class BaseInfo:
    """What the export needs from the base GGUF."""

    arch: str
    n_blocks: int
    n_head: int
    n_head_kv: int
    shapes: dict[str, tuple[int, ...]]  # tensor name -> ggml ne (fastest dimension first)


def read_base(base_path: Path) -> BaseInfo:
    """Architecture, block/head counts and tensor shapes of a base GGUF (cached per file version)."""
    stat = base_path.stat()
    return _read_base(str(base_path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_base(path: str, size: int, mtime_ns: int) -> BaseInfo:
    reader = gguf.GGUFReader(path)

    def field(key: str, default: int | None = None) -> Any:
        found = reader.get_field(key)
        if found is None:
            if default is not None:
                return default
            raise ValueError(f"base model {path} has no {key!r} metadata")
        return found.contents()

    arch = str(field(gguf.Keys.General.ARCHITECTURE))
    head = int(field(gguf.Keys.Attention.HEAD_COUNT.format(arch=arch)))
    return BaseInfo(
        arch=arch,
        n_blocks=int(field(gguf.Keys.LLM.BLOCK_COUNT.format(arch=arch))),
        n_head=head,
        n_head_kv=int(field(gguf.Keys.Attention.HEAD_COUNT_KV.format(arch=arch), head)),
        shapes={t.name: tuple(int(n) for n in t.shape) for t in reader.tensors},
    )


def permute_rope_rows(matrix: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's q/k row permutation (HF rotate-half layout -> GGUF interleaved pairs)."""
    rows = matrix.shape[0]
    if rows % (2 * n_head):
        raise ValueError(f"{rows} rows do not split into {n_head} heads of rotary pairs")
    return matrix.reshape(n_head, 2, rows // n_head // 2, *matrix.shape[1:]).swapaxes(1, 2).reshape(matrix.shape)


def export_gguf_lora(
    model: PeftModel,
    out_path: Path,
    *,
    base_path: Path,
    adapter_name: str | None = None,
    dtype: Literal["f32", "f16"] = "f32",
) -> str:
    """Write `model`'s LoRA (the active adapter unless named) as a GGUF LoRA; return the file's SHA-256.

    The file is written next to `out_path` and renamed into place, so a reader never sees half of it.
    """
    import torch
    from peft.tuners.lora.layer import Linear as LoraLinear
    from peft.tuners.lora.layer import LoraLayer

    if dtype not in ("f32", "f16"):
        raise ValueError(f"dtype must be 'f32' or 'f16', not {dtype!r}")
    name = adapter_name or _active_adapter(model)
    config = _lora_config(model, name)
    alpha = float(config.lora_alpha)
    if alpha <= 0:
        raise ValueError(f"lora_alpha must be positive to export (got {alpha})")
    base = read_base(Path(base_path))
    if base.arch not in SUPPORTED_ARCHS:
        raise ValueError(f"base model architecture {base.arch!r} is not supported (only {sorted(SUPPORTED_ARCHS)})")
    permute_qk = PERMUTES_QK[base.arch]
    name_map = gguf.get_tensor_name_map(_arch_enum(base.arch), base.n_blocks)
    np_dtype = np.float32 if dtype == "f32" else np.float16

    tensors: list[tuple[str, np.ndarray]] = []
    for module_name, module in model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        if name in getattr(module, "lora_embedding_A", {}):
            raise ValueError(f"{module_name}: embedding LoRA is not supported by the export")
        if name not in module.lora_A:
            continue
        if type(module) is not LoraLinear:
            raise ValueError(f"{module_name}: {type(module).__name__} LoRA layers are not supported (Linear only)")
        if module.lora_variant.get(name) is not None:
            raise ValueError(f"{module_name}: LoRA variant {type(module.lora_variant[name]).__name__} "
                             "(DoRA, aLoRA, ...) is not supported")  # fmt: skip
        if getattr(module, "fan_in_fan_out", False):
            raise ValueError(f"{module_name}: fan_in_fan_out layers are not supported")
        if module.lora_B[name].bias is not None:
            raise ValueError(f"{module_name}: LoRA biases (lora_bias=True) are not supported")
        hf_name = module_name.removeprefix(_PEFT_PREFIX)
        mapped = name_map.get_type_and_name(hf_name)
        if mapped is None or mapped[0] not in SUPPORTED_TENSORS:
            supported = ", ".join(SUPPORTED_TENSORS.values())
            raise ValueError(f"{module_name}: only LoRA on {supported} can be exported")
        kind, gguf_name = mapped
        target = f"{gguf_name}.weight"

        a = module.lora_A[name].weight.detach().to("cpu", dtype=torch.float32).numpy()  # (r, in)
        b = module.lora_B[name].weight.detach().to("cpu", dtype=torch.float32).numpy()  # (out, r)
        rank = a.shape[0]
        fold = float(module.scaling[name]) * rank / alpha  # 1.0 unless rslora / alpha_pattern
        if abs(fold - 1.0) > 1e-9:
            b = b * np.float32(fold)
        expected = base.shapes.get(target)
        if expected is None:
            raise ValueError(f"{module_name}: the base model has no tensor {target!r}")
        if expected != (a.shape[1], b.shape[0]) or b.shape[1] != rank:
            raise ValueError(f"{module_name}: LoRA shapes A{a.shape} B{b.shape} do not fit {target} "
                             f"(ggml ne {expected}); wrong base model?")  # fmt: skip
        if permute_qk and kind is gguf.MODEL_TENSOR.ATTN_Q:
            b = permute_rope_rows(b, base.n_head)
        elif permute_qk and kind is gguf.MODEL_TENSOR.ATTN_K:
            b = permute_rope_rows(b, base.n_head_kv)
        tensors.append((f"{target}.lora_a", np.ascontiguousarray(a, dtype=np_dtype)))
        tensors.append((f"{target}.lora_b", np.ascontiguousarray(b, dtype=np_dtype)))
    if not tensors:
        raise ValueError(f"adapter {name!r} has no LoRA layers to export")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{out_path.name}-", suffix=".part", dir=out_path.parent)
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(tmp, base.arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for tensor_name, data in tensors:
            writer.add_tensor(tensor_name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        digest = sha256_file(Path(tmp))
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest


# --- internals ----------------------------------------------------------------------------------


def _arch_enum(arch: str) -> gguf.MODEL_ARCH:
    for key, value in gguf.MODEL_ARCH_NAMES.items():
        if value == arch:
            return key
    raise ValueError(f"gguf does not know the architecture {arch!r}")


def _active_adapter(model: PeftModel) -> str:
    active = getattr(model, "active_adapter", None)
    if isinstance(active, list | tuple):
        if len(active) != 1:
            raise ValueError(f"several adapters are active ({active}); name the one to export")
        active = active[0]
    if not isinstance(active, str):
        raise ValueError("the model has no active PEFT adapter (expected a peft.PeftModel)")
    return active


def _lora_config(model: PeftModel, name: str):
    from peft import LoraConfig

    config = getattr(model, "peft_config", {}).get(name)
    if config is None:
        raise ValueError(f"the model has no adapter named {name!r}")
    if not isinstance(config, LoraConfig):
        raise ValueError(f"adapter {name!r} is a {type(config).__name__}; only LoRA can be exported")
    refusals = {
        "use_dora": "DoRA",
        "lora_bias": "LoRA biases",
        "modules_to_save": "modules_to_save (fully trained copies of whole modules)",
        "trainable_token_indices": "trainable token embeddings",
        "target_parameters": "target_parameters (LoRA on raw parameters)",
        "alora_invocation_tokens": "aLoRA (activated LoRA)",
        "use_qalora": "QALoRA",
    }
    for attr, what in refusals.items():
        if getattr(config, attr, None):
            raise ValueError(f"adapter {name!r} uses {what}, which the GGUF export does not support")
    return config
