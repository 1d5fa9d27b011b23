"""Trace all-MiniLM-L6-v2 into a compact ONNX Runtime graph (imports torch; used only to export).

`mining.embeddings` calls `export_graph` when its cached export is missing (at setup through
`manage.py prefetch_models`, or lazily on first use), then checks the result against the torch model
before it keeps it; the cache, that check and the runtime live there.

The graph is written by hand from the BertModel weights (read offline with transformers) rather than
by tracing transformers' own forward, so that it is made of ONNX Runtime's fused CPU operators, per
layer:

    MatMulNBits (QKV) -> Split -> MultiHeadAttention -> MatMulNBits -> Add + LayerNormalization
    -> MatMulNBits -> Gelu -> MatMulNBits -> Add + LayerNormalization

after Gather (word embeddings) + position embeddings (+ token type 0) -> LayerNormalization: about 75
nodes instead of ~250. With `quantize=False` the matrices are fp32 (exact, ~4.5 ms a prompt on the
2-core dev machine). With `quantize=True` (~3 ms) the 24 weight matrices are stored as 8-bit integers
in blocks of 16 along the input dimension (one fp32 scale per block, symmetric) and ONNX Runtime runs
them on its int8 kernels, quantizing the activations per row and block of 16 (accuracy_level 4);
embeddings, attention, LayerNorm and GELU stay fp32. A few input channels of BERT carry activations
15x the others (e.g. channel 99 before every FFN: ~28 against a median ~1.8), which would coarsen the
int8 blocks they fall in, so each matrix is smoothed first (SmoothQuant, alpha 0.5): input channel k
is divided by s_k = sqrt(max|x_k| / max|W_:,k|) in an explicit Mul and the weight column multiplied by
it, an exact rewrite before rounding. max|x_k| comes from CALIBRATION_TEXTS through the torch model,
texts kept apart from the ones mining.embeddings checks the export on. Without smoothing the shortest
prompts drift to cosine 0.998 from the fp32 vectors; with it every probe text stays >= 0.999.

Inputs: input_ids and attention_mask (int64, batch x tokens); output: last_hidden_state (float32,
batch x tokens x 384); pooling is left to the caller.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

OPSET = 17  # LayerNormalization
MS_DOMAIN = "com.microsoft"
WEIGHT_BITS = 8
BLOCK_SIZE = 16  # 32 measured min cosine 0.99953 against fp32 on the paraphrase set, 16: 0.99967, at the same speed
ACCURACY_LEVEL = 4  # int8 activations (per row and block) on the VNNI kernels; 0 (fp32) runs 6x slower here
SMOOTHING_ALPHA = 0.5
# Calibration for the smoothing: a spread of lengths and kinds, none of them a probe text.
CALIBRATION_TEXTS = (
    "What is the boiling point of water at sea level?", "hello", "thank you", "ok", "good morning",
    "Can you help me write a cover letter?", "How many legs does a spider have?", "Explain photosynthesis simply.",
    "Convert 5 miles to kilometers.", "Who wrote Pride and Prejudice?", "Is it safe to eat raw eggs?",
    "What's 15% of 80?", "Summarize the plot of Hamlet in one sentence.", "Why is the sky blue?",
    "def f(x): return x * 2",
)  # fmt: skip


class UnsupportedModel(ValueError):
    """The model dir is not the BERT + mean pooling + normalize pipeline this graph reproduces."""


def check_pipeline(model_dir: Path) -> dict[str, Any]:
    """The BERT config, after checking that modules.json is Transformer -> Pooling(mean) -> Normalize."""
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
    if modules != ["Transformer", "Pooling", "Normalize"]:
        raise UnsupportedModel(f"modules.json is {modules}, expected Transformer, Pooling, Normalize")
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise UnsupportedModel(f"pooling is {modes}, expected mean tokens only")
    config = json.loads((model_dir / "config.json").read_text())
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k, v) != v}
    if wrong or config["hidden_size"] % config["num_attention_heads"]:
        raise UnsupportedModel(f"config.json differs from a BERT encoder this graph reproduces: {wrong or config}")
    return config


def _typed(value: Any, like: Any, last_dim: int | None = None) -> Any:
    """Declare a custom node's output: `like`'s dtype and rank, dynamic sizes except the last (no C++ warning)."""
    rank = like.type().dim()
    if rank is not None:
        value.setType(like.type().with_sizes([None] * (rank - 1) + [last_dim]))
    return value


def _absent(g: Any) -> Any:
    """An omitted optional input of an ONNX node."""
    value = g.op("prim::Constant")
    value.setType(torch._C.OptionalType.ofTensor())
    return value


class _MatMulNBits(torch.autograd.Function):
    """x @ W.T + b with W stored as 8-bit blocks; exported as com.microsoft::MatMulNBits."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor,
                k: int, n: int) -> torch.Tensor:  # fmt: skip
        weight = ((packed.float() - 2 ** (WEIGHT_BITS - 1)) * scales[..., None]).reshape(n, k)
        return x @ weight.t() + bias

    @staticmethod
    def symbolic(g: Any, x: Any, packed: Any, scales: Any, bias: Any, k: int, n: int) -> Any:
        # zero_points omitted: the default 2^(bits-1) = 128 (symmetric quantization); g_idx omitted.
        attributes = {"K_i": k, "N_i": n, "bits_i": WEIGHT_BITS, "block_size_i": BLOCK_SIZE,
                      "accuracy_level_i": ACCURACY_LEVEL}  # fmt: skip
        product = g.op(f"{MS_DOMAIN}::MatMulNBits", x, packed, scales, _absent(g), _absent(g), bias, **attributes)
        return _typed(product, x, n)


class _MultiHeadAttention(torch.autograd.Function):
    """softmax(QK^T / sqrt(d) + padding mask) V per head; exported as com.microsoft::MultiHeadAttention."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                heads: int) -> torch.Tensor:  # fmt: skip
        b, s, h = q.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, s, heads, h // heads).transpose(1, 2)

        scores = split(q) @ split(k).transpose(-1, -2) / (h // heads) ** 0.5
        scores = scores + (1.0 - mask[:, None, None, :].float()) * -10000.0  # ORT's mask_filter_value
        return (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(b, s, h)

    @staticmethod
    def symbolic(g: Any, q: Any, k: Any, v: Any, mask: Any, heads: int) -> Any:
        attention = g.op(f"{MS_DOMAIN}::MultiHeadAttention", q, k, v, _absent(g), mask, num_heads_i=heads)
        return _typed(attention, q, q.type().sizes()[-1] if q.type().sizes() else None)


class _Gelu(torch.autograd.Function):
    """The exact (erf) GELU of BERT's hidden_act "gelu"; exported as com.microsoft::Gelu."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(x)

    @staticmethod
    def symbolic(g: Any, x: Any) -> Any:
        return _typed(g.op(f"{MS_DOMAIN}::Gelu", x), x, x.type().sizes()[-1] if x.type().sizes() else None)


class _Linear(nn.Module):
    """x @ W.T + b; quantized: (x / s) @ (W * s).T + b with W * s stored in 8-bit blocks."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, input_max: torch.Tensor | None) -> None:
        super().__init__()
        weight = weight.detach().float()
        self.n, self.k = weight.shape
        self.quantize = input_max is not None
        self.register_buffer("bias", bias.detach().float().clone())
        if input_max is not None:
            activation = input_max.clamp(min=1e-5) ** SMOOTHING_ALPHA
            smooth = (activation / weight.abs().amax(0).clamp(min=1e-5) ** (1 - SMOOTHING_ALPHA)).clamp(min=1e-2)
            weight = weight * smooth[None, :]
            self.register_buffer("inverse_smooth", (1.0 / smooth).contiguous())
            if self.k % BLOCK_SIZE:
                raise UnsupportedModel(f"a {self.n}x{self.k} weight does not split into blocks of {BLOCK_SIZE}")
            blocks = weight.reshape(self.n, self.k // BLOCK_SIZE, BLOCK_SIZE)
            qmax = 2 ** (WEIGHT_BITS - 1) - 1
            scales = blocks.abs().amax(-1) / qmax
            scales = torch.where(scales > 0, scales, torch.ones_like(scales))
            packed = torch.clamp(torch.round(blocks / scales[..., None]), -qmax, qmax) + 2 ** (WEIGHT_BITS - 1)
            self.register_buffer("packed", packed.to(torch.uint8).contiguous())  # (N, K / block, block)
            self.register_buffer("scales", scales.contiguous())  # (N, K / block)
        else:
            self.register_buffer("weight_t", weight.t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quantize:
            x = x * self.inverse_smooth
            return _MatMulNBits.apply(x, self.packed, self.scales, self.bias, self.k, self.n)
        return x @ self.weight_t + self.bias


class _Layer(nn.Module):
    def __init__(self, layer: nn.Module, config: dict[str, Any], input_max: dict[str, torch.Tensor] | None) -> None:
        super().__init__()
        attention = layer.attention
        qkv = [attention.self.query, attention.self.key, attention.self.value]
        maxima = input_max or {}
        self.qkv = _Linear(torch.cat([m.weight for m in qkv]), torch.cat([m.bias for m in qkv]), maxima.get("qkv"))
        self.out = _Linear(attention.output.dense.weight, attention.output.dense.bias, maxima.get("out"))
        self.norm1 = attention.output.LayerNorm
        self.up = _Linear(layer.intermediate.dense.weight, layer.intermediate.dense.bias, maxima.get("up"))
        self.down = _Linear(layer.output.dense.weight, layer.output.dense.bias, maxima.get("down"))
        self.norm2 = layer.output.LayerNorm
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split(self.hidden, dim=-1)
        x = self.norm1(self.out(_MultiHeadAttention.apply(q, k, v, mask, self.heads)) + x)
        return self.norm2(self.down(_Gelu.apply(self.up(x))) + x)


def _input_maxima(bert: nn.Module, model_dir: Path, texts: tuple[str, ...]) -> list[dict[str, torch.Tensor]]:
    """Per layer and matrix, the largest |activation| of each input channel over `texts` (fp32 torch model)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(
        max_length=json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    )
    maxima: list[dict[str, torch.Tensor]] = [{} for _ in bert.encoder.layer]

    def record(layer: int, name: str) -> Any:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            seen = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            previous = maxima[layer].get(name)
            maxima[layer][name] = seen if previous is None else torch.maximum(previous, seen)

        return hook

    hooks = []
    for i, layer in enumerate(bert.encoder.layer):
        for name, module in (("qkv", layer.attention.self.query), ("out", layer.attention.output.dense),
                             ("up", layer.intermediate.dense), ("down", layer.output.dense)):  # fmt: skip
            hooks.append(module.register_forward_hook(record(i, name)))
    try:
        with torch.no_grad():
            for text in texts:
                encoding = tokenizer.encode(text)
                bert(input_ids=torch.tensor([encoding.ids]), attention_mask=torch.tensor([encoding.attention_mask]))
    finally:
        for hook in hooks:
            hook.remove()
    return maxima


class _Encoder(nn.Module):
    def __init__(
        self, bert: nn.Module, config: dict[str, Any], input_max: list[dict[str, torch.Tensor]] | None
    ) -> None:
        super().__init__()
        embeddings = bert.embeddings
        self.register_buffer("words", embeddings.word_embeddings.weight.detach().clone())
        # A single text's token type ids are all 0: type row 0 is folded into the positions.
        positions = embeddings.position_embeddings.weight + embeddings.token_type_embeddings.weight[0]
        self.register_buffer("positions", positions.detach().clone())
        self.norm = embeddings.LayerNorm
        layers = bert.encoder.layer
        self.layers = nn.ModuleList(
            _Layer(layer, config, input_max[i] if input_max else None) for i, layer in enumerate(layers)
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.words[input_ids] + self.positions[: input_ids.shape[1]])
        mask = attention_mask.to(torch.int32)
        for layer in self.layers:
            x = layer(x, mask)
        return x


@contextlib.contextmanager
def _serializer_without_onnx_package() -> Iterator[None]:
    """Let torch's TorchScript exporter write the file when the `onnx` package is not installed.

    The exporter builds the protobuf in C++; only its last step (`_add_onnxscript_fn`) imports `onnx`,
    to copy onnxscript functions of custom opsets into the file. This graph has none (its com.microsoft
    nodes come from `symbolic` methods), so that step returns its input unchanged and can be skipped.
    """
    if importlib.util.find_spec("onnx") is not None:
        yield
        return
    from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

    original = onnx_proto_utils._add_onnxscript_fn
    onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes
    try:
        yield
    finally:
        onnx_proto_utils._add_onnxscript_fn = original


def export_graph(model_dir: Path, dest: Path, *, quantize: bool) -> None:
    """Write the graph of the model in `model_dir` to `dest` (offline; ~3 s plus ~4 s of imports)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    config = check_pipeline(model_dir)
    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    input_max = _input_maxima(bert, model_dir, CALIBRATION_TEXTS) if quantize else None
    graph = _Encoder(bert, config, input_max).eval()
    # Trace with a padded row so that the mask reaches the attention nodes.
    input_ids = torch.tensor([[101, 2054, 2003, 1996, 3007, 102], [101, 7592, 102, 0, 0, 0]])
    attention_mask = (input_ids != 0).long()
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), _serializer_without_onnx_package(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            graph,
            (input_ids, attention_mask),
            str(dest),
            dynamo=False,  # the torch.export-based exporter needs onnxscript; this one writes the file itself
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=OPSET,
            custom_opsets={MS_DOMAIN: 1},
        )
