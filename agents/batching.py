"""Batches for local generation, sized by tokens rather than by count, and a runner that halves a
batch that runs out of GPU memory and tries again, down to one clip."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# an automatic budget never goes above this: prefill also holds the vision encoder's activations,
# which the per-token estimate below does not count
AUTO_BUDGET_CEILING = 32768


def token_batches(costs: Sequence[int], budget: int, max_rows: int | None = None) -> list[list[int]]:
    """Indices of `costs` grouped so that rows x longest row stays within `budget` (left padding makes
    every row as long as the longest) and no batch has more than max_rows rows. Longest first, so rows
    of similar length share a batch; a row over the budget on its own still gets a batch of one."""
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    batches: list[list[int]] = []
    for i in order:
        current = batches[-1] if batches else None
        if current is None or (len(current) + 1) * costs[current[0]] > budget or (max_rows and len(current) >= max_rows):
            batches.append([i])
        else:
            current.append(i)
    return batches


def memory_token_budget(free_bytes: int, text_config, dtype_bytes: int) -> int:
    """How many prompt + answer tokens fit in free_bytes: each token keeps its keys and values in every
    layer, and prefill holds one layer's hidden states and MLP activations per token at a time."""
    heads = text_config.num_attention_heads
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // heads
    kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
    kv = 2 * text_config.num_hidden_layers * kv_heads * head_dim * dtype_bytes
    activations = (4 * text_config.hidden_size + 3 * text_config.intermediate_size) * dtype_bytes
    return int(max(256, min(AUTO_BUDGET_CEILING, free_bytes * 0.7 // (kv + activations))))


@dataclass
class BatchRun:
    """What run_halving gave back: each index's output, and why the rows that never fit failed."""

    outputs: dict[int, object] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    batch_sizes: list[int] = field(default_factory=list)  # the size of every batch tried, in order


def run_halving(batches: list[list[int]], run: Callable[[list[int]], Sequence], is_oom: Callable[[BaseException], bool],
                relieve: Callable[[], None] = lambda: None) -> BatchRun:
    """Run each batch; one that runs out of memory is split in two and both halves are tried, down to
    a single row; later batches are cut to the size that last worked. A row that does not fit alone
    is reported in `failed` and the others go on. Any other error propagates."""
    result = BatchRun()
    queue = [list(b) for b in batches]
    cap: int | None = None
    while queue:
        batch = queue.pop(0)
        if cap is not None and len(batch) > cap:
            queue[:0] = [batch[i : i + cap] for i in range(0, len(batch), cap)]
            continue
        result.batch_sizes.append(len(batch))
        try:
            outputs = run(batch)
        except BaseException as exc:
            if not is_oom(exc):
                raise
            relieve()
            if len(batch) == 1:
                result.failed[batch[0]] = f"out of memory even alone ({type(exc).__name__}: {str(exc)[:200]})"
                continue
            cap = len(batch) // 2
            queue[:0] = [batch[:cap], batch[cap:]]
            continue
        result.outputs.update(zip(batch, outputs))
    return result
