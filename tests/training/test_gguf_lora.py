"""The GGUF LoRA file: layout, values, the q/k row permutation (llama) or its absence (qwen2), and
refusals of what it cannot express."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, LlamaTensorProcessor

from tests.training.conftest import ALL_TARGETS, BASE_MODELS, SMOLLM2, make_peft
from training.gguf_lora import PERMUTES_QK, SUPPORTED_ARCHS, export_gguf_lora, permute_rope_rows, read_base

N_HEAD, N_HEAD_KV, HEAD_DIM, HIDDEN, FFN = 9, 3, 64, 576, 1536  # SmolLM2-135M's
ON_SMOLLM2 = pytest.mark.parametrize("base_spec", [SMOLLM2], indirect=True)  # whatever model is active


@pytest.mark.parametrize(("name", "heads"), [("blk.0.attn_q.weight", N_HEAD), ("blk.0.attn_k.weight", N_HEAD_KV)])
def test_the_rope_permutation_is_what_transformers_gguf_loader_undoes(name, heads):
    rows = np.random.default_rng(0).standard_normal((heads * HEAD_DIM, 7)).astype(np.float32)
    processor = LlamaTensorProcessor(config={"num_attention_heads": N_HEAD, "num_key_value_heads": N_HEAD_KV})
    restored = processor.process(permute_rope_rows(rows, heads), name).weights
    assert np.array_equal(restored, rows)
    assert not np.array_equal(permute_rope_rows(rows, heads), rows)


@pytest.mark.parametrize("arch", sorted(SUPPORTED_ARCHS))
def test_q_k_are_permuted_for_exactly_the_architectures_transformers_unpermutes(arch):
    """transformers reverses the permutation with LlamaTensorProcessor (llama) and loads qwen2 as stored."""
    assert (TENSOR_PROCESSORS.get(arch) is LlamaTensorProcessor) is PERMUTES_QK[arch]


@pytest.mark.parametrize("base_spec", BASE_MODELS, indirect=True)
def test_the_real_gguf_holds_q_k_as_the_export_writes_them(hf_base, base_spec):
    """Block 1's q/k/v rows in the served GGUF (dequantized) against transformers' copy: permuted for
    llama (SmolLM2), as they are for qwen2 (Qwen2.5), and qwen2's q/k/v biases likewise as they are."""
    path = base_spec.local_path()
    base = read_base(path)
    stored = {t.name: t for t in gguf.GGUFReader(path).tensors}
    attn = hf_base[0].model.layers[1].self_attn
    for name, module, heads in (("attn_q", attn.q_proj, base.n_head), ("attn_k", attn.k_proj, base.n_head_kv),
                                ("attn_v", attn.v_proj, None)):  # fmt: skip
        tensor = stored[f"blk.1.{name}.weight"]
        rows = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        weight = module.weight.detach().numpy()
        permuted = heads is not None and PERMUTES_QK[base.arch]
        assert np.array_equal(rows, permute_rope_rows(weight, heads) if permuted else weight)
        if heads is not None:
            assert not np.array_equal(permute_rope_rows(weight, heads), weight)  # the layout is visible
        if module.bias is not None:
            assert base.arch == "qwen2"
            assert np.array_equal(stored[f"blk.1.{name}.bias"].data, module.bias.detach().numpy())


@pytest.fixture(scope="module")
def small_lora(hf_base):
    targets = ["q_proj", "k_proj", "v_proj", "down_proj"]
    return make_peft(hf_base[0], seed=1, r=4, lora_alpha=8.0, target_modules=targets)


def tensors_of(path) -> dict[str, gguf.ReaderTensor]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


@ON_SMOLLM2
def test_the_file_says_what_llama_cpp_checks_and_holds_each_pair(small_lora, base_spec, tmp_path):
    path = tmp_path / "a.gguf"
    export_gguf_lora(small_lora, path, base_path=base_spec.local_path())
    reader = gguf.GGUFReader(path)
    assert reader.get_field("general.architecture").contents() == "llama"
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("adapter.type").contents() == "lora"
    assert reader.get_field("adapter.lora.alpha").contents() == 8.0
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 30 * 4 * 2
    q_a, q_b = tensors["blk.7.attn_q.weight.lora_a"], tensors["blk.7.attn_q.weight.lora_b"]
    assert (list(q_a.shape), list(q_b.shape)) == ([HIDDEN, 4], [4, N_HEAD * HEAD_DIM])  # ggml ne order
    assert list(tensors["blk.7.attn_k.weight.lora_b"].shape) == [4, N_HEAD_KV * HEAD_DIM]
    assert list(tensors["blk.7.ffn_down.weight.lora_a"].shape) == [FFN, 4]
    assert {t.tensor_type for t in tensors.values()} == {gguf.GGMLQuantizationType.F32}

    layer = small_lora.base_model.model.model.layers[7]
    a = layer.self_attn.q_proj.lora_A["default"].weight.detach().numpy()
    b = layer.self_attn.q_proj.lora_B["default"].weight.detach().numpy()
    assert np.array_equal(q_a.data, a)
    assert np.array_equal(q_b.data, permute_rope_rows(b, N_HEAD))
    k_b = layer.self_attn.k_proj.lora_B["default"].weight.detach().numpy()
    assert np.array_equal(tensors["blk.7.attn_k.weight.lora_b"].data, permute_rope_rows(k_b, N_HEAD_KV))
    v_b = layer.self_attn.v_proj.lora_B["default"].weight.detach().numpy()
    assert np.array_equal(tensors["blk.7.attn_v.weight.lora_b"].data, v_b)  # v is not permuted


@ON_SMOLLM2
def test_f16_export_loads_and_serves(small_lora, base_spec, tmp_path, q4_backend):
    from inference.backends.base import AdapterRef

    path = tmp_path / "a16.gguf"
    digest = export_gguf_lora(small_lora, path, base_path=base_spec.local_path(), dtype="f16")
    assert {t.tensor_type for t in tensors_of(path).values()} == {gguf.GGMLQuantizationType.F16}
    q4_backend.use_adapter(AdapterRef(version="f16", path=path, sha256=digest))
    try:
        assert q4_backend.generate([{"role": "user", "content": "hi"}], max_tokens=4, temperature=0.0).completion_tokens
    finally:
        q4_backend.use_adapter(None)


# --- refusals ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llama():
    """A 2-block llama with the base's head layout but small widths (for refusals: fast to wrap)."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)  # fmt: skip
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"target_modules": ["q_proj"], "use_dora": True}, "DoRA"),
        ({"target_modules": ["q_proj"], "lora_bias": True}, "LoRA biases"),
        ({"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"target_modules": ["q_proj"], "trainable_token_indices": [1, 2]}, "trainable token"),
        ({"target_modules": ["embed_tokens"]}, "Embedding LoRA layers are not supported|embedding LoRA"),
        ({"target_modules": ["lm_head"]}, "only LoRA on q_proj, k_proj, v_proj, o_proj, gate_proj"),
        ({"target_modules": ["q_proj"]}, "do not fit blk.0.attn_q.weight .*wrong base model"),  # tiny != base
    ],
)
def test_unsupported_adapters_are_refused_and_nothing_is_written(tiny_llama, base_spec, tmp_path, config, message):
    model = make_peft(tiny_llama, r=2, lora_alpha=4.0, **config)
    out = tmp_path / "refused.gguf"
    with pytest.raises(ValueError, match=message):
        export_gguf_lora(model, out, base_path=base_spec.local_path())
    assert list(tmp_path.iterdir()) == []


def test_a_base_of_another_architecture_is_refused(tiny_llama, tmp_path):
    other = tmp_path / "phi3.gguf"
    writer = gguf.GGUFWriter(other, "phi3")
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    model = make_peft(tiny_llama, r=2, lora_alpha=4.0, target_modules=["q_proj"])
    with pytest.raises(ValueError, match=r"architecture 'phi3' is not supported \(only \['llama', 'qwen2'\]\)"):
        export_gguf_lora(model, tmp_path / "out.gguf", base_path=other)
    assert not (tmp_path / "out.gguf").exists()


def test_a_plain_model_or_bad_dtype_is_refused(tiny_llama, base_spec, tmp_path):
    with pytest.raises(ValueError, match="no active PEFT adapter"):
        export_gguf_lora(tiny_llama, tmp_path / "x.gguf", base_path=base_spec.local_path())
    model = make_peft(tiny_llama, r=2, lora_alpha=4.0, target_modules=["q_proj"])
    with pytest.raises(ValueError, match="dtype"):
        export_gguf_lora(model, tmp_path / "x.gguf", base_path=base_spec.local_path(), dtype="q8_0")


# --- qwen2 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_qwen2():
    """A 2-block qwen2 (q/k/v with biases, grouped-query heads, untied output) with small widths."""
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)  # fmt: skip
    return Qwen2ForCausalLM(config).eval()


def write_base_like(path, arch: str, model) -> None:
    """A stand-in base GGUF for `model`: its architecture, head counts and every tensor's shape (zeros)."""
    config = model.config
    names = gguf.get_tensor_name_map(next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch),
                                     config.num_hidden_layers)  # fmt: skip
    writer = gguf.GGUFWriter(path, arch)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    for hf_name, tensor in model.state_dict().items():
        stem, _, suffix = hf_name.rpartition(".")
        writer.add_tensor(f"{names.get_name(stem)}.{suffix}", np.zeros(tuple(tensor.shape), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_qwen2_lora_is_written_unpermuted_on_the_weights_only(tiny_qwen2, tmp_path):
    """qwen2: every projection's pair named after its `.weight` (never the q/k/v biases), B's rows as
    PEFT holds them for q and k too (convert_hf_to_gguf stores qwen2's q/k unpermuted)."""
    base = tmp_path / "qwen2-base.gguf"
    write_base_like(base, "qwen2", tiny_qwen2)
    model = make_peft(tiny_qwen2, seed=2, r=4, lora_alpha=8.0, target_modules=ALL_TARGETS)
    out = tmp_path / "qwen2-lora.gguf"
    export_gguf_lora(model, out, base_path=base)
    reader = gguf.GGUFReader(out)
    assert reader.get_field("general.architecture").contents() == "qwen2"
    tensors = {t.name: t for t in reader.tensors}
    kinds = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    assert set(tensors) == {f"blk.{i}.{k}.weight.lora_{ab}" for i in range(2) for k in kinds for ab in "ab"}
    attn = model.base_model.model.model.layers[1].self_attn
    for kind, module in (("attn_q", attn.q_proj), ("attn_k", attn.k_proj), ("attn_v", attn.v_proj)):
        assert module.base_layer.bias is not None  # qwen2's biases stay in the base model
        a = module.lora_A["default"].weight.detach().numpy()
        b = module.lora_B["default"].weight.detach().numpy()
        assert np.array_equal(tensors[f"blk.1.{kind}.weight.lora_a"].data, a)
        assert np.array_equal(tensors[f"blk.1.{kind}.weight.lora_b"].data, b)
    assert list(tensors["blk.1.attn_k.weight.lora_b"].shape) == [4, 2 * 16]  # ggml ne: (r, n_head_kv * head_dim)
