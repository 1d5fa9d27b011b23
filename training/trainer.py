"""The LoRA trainer: PEFT on the base model that transformers loads from the serving GGUF file.

Examples are formatted with the same chat template and system prompt the serving worker uses
(agent0), and the loss counts only the answer's tokens (and the end-of-turn token), so the adapter
learns to answer, not to repeat questions. Training stops at `max_steps`, after `epochs` passes
over the data, or when the time budget runs out, whichever comes first; progress goes to the log
and to the swarm_training_step / swarm_training_loss metrics.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from django.conf import settings

from training.datasets import Example

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE = -100


@dataclass
class TrainParams:
    rank: int = 64
    alpha: float = 32.0
    dropout: float = 0.0
    lr: float = 1e-3
    max_steps: int = 300
    epochs: int = 20
    batch_size: int = 8
    time_budget_s: float = 2400.0
    max_length: int = 256
    seed: int = 0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS

    @classmethod
    def from_settings(cls, **overrides: Any) -> TrainParams:
        base = cls(
            rank=settings.SWARM_LORA_RANK,
            alpha=settings.SWARM_LORA_ALPHA,
            lr=settings.SWARM_LORA_LR,
            max_steps=settings.SWARM_LORA_MAX_STEPS,
            batch_size=settings.SWARM_LORA_BATCH_SIZE,
            time_budget_s=settings.SWARM_LORA_TIME_BUDGET_S,
        )
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown training parameters: {', '.join(sorted(unknown))}")
        for name, value in overrides.items():
            current = getattr(base, name)
            setattr(base, name, tuple(value) if isinstance(current, tuple) else type(current)(value))
        return base

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["target_modules"] = list(self.target_modules)
        return body


@dataclass
class TrainResult:
    model: Any  # peft.PeftModel
    steps: int
    seconds: float
    device: str
    losses: list[float] = field(default_factory=list)
    stopped_by: str = "steps"

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps if self.steps else 0.0


def encode(tokenizer: Any, example: Example, *, max_length: int) -> tuple[list[int], list[int]]:
    """(input ids, labels): the chat-templated prompt (labels ignored) then the answer and end of turn."""
    from routing.heads.agent0 import SYSTEM_PROMPT
    from training.hf import as_text, chat_prompt

    prompt_ids = tokenizer(chat_prompt(tokenizer, example.prompt, system=SYSTEM_PROMPT),
                           add_special_tokens=False)["input_ids"]  # fmt: skip
    answer = as_text(tokenizer, example.answer.strip())
    answer_ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_length]
    return ids, labels


def _batch(rows: list[tuple[list[int], list[int]]], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, labs) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def planned_steps(n_examples: int, params: TrainParams) -> int:
    return max(1, min(params.max_steps, params.epochs * math.ceil(n_examples / params.batch_size)))


def train_lora(
    examples: list[Example],
    params: TrainParams,
    *,
    progress: Callable[[int, float], None] | None = None,
    base: tuple[Any, Any] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on `examples`; `base` = (model, tokenizer) to reuse an already loaded base."""
    import torch
    from peft import LoraConfig, get_peft_model

    from training.hf import load_base

    if not examples:
        raise ValueError("no examples to train on")
    torch.manual_seed(params.seed)
    rng = random.Random(params.seed)
    model, tokenizer = base or load_base()
    device = str(next(model.parameters()).device)
    config = LoraConfig(r=params.rank, lora_alpha=params.alpha, lora_dropout=params.dropout,
                        target_modules=list(params.target_modules), bias="none", task_type="CAUSAL_LM")  # fmt: skip
    peft_model = get_peft_model(model, config)
    peft_model.train()
    rows = [encode(tokenizer, ex, max_length=params.max_length) for ex in examples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=params.lr)
    total = planned_steps(len(rows), params)
    order: list[int] = []
    losses: list[float] = []
    started = time.perf_counter()
    stopped_by = "steps"
    step = 0
    while step < total:
        if time.perf_counter() - started > params.time_budget_s:
            stopped_by = "time_budget"
            break
        if len(order) < params.batch_size:
            fresh = list(range(len(rows)))
            rng.shuffle(fresh)
            order.extend(fresh)
        picked, order = order[: params.batch_size], order[params.batch_size :]
        batch = _batch([rows[i] for i in picked], pad_id, device)
        loss = peft_model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, losses[-1])
        if step == 1 or step % 10 == 0 or step == total:
            log.info("lora step %d/%d loss %.4f (%.2fs/step)", step, total, losses[-1],
                     (time.perf_counter() - started) / step)  # fmt: skip
    peft_model.eval()
    return TrainResult(model=peft_model, steps=step, seconds=time.perf_counter() - started, device=device,
                       losses=losses, stopped_by=stopped_by)  # fmt: skip
