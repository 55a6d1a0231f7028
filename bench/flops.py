"""Forward FLOPs of an encoder, from the checkpoint's tensor shapes alone (framework-free).

Every 2-D weight outside the embedding tables is a dense layer applied once per token (2·in·out FLOPs);
pooler weights apply once per sequence; ALBERT's shared layer is applied num_hidden_layers times.
Attention adds 4·s²·d per layer (scores and context), d = the query projection's output width.
Matches torch's FlopCounterMode on every catalogue backbone (tests/test_flops.py).
"""

from __future__ import annotations

import re

_QUERY = re.compile(r"(\.query\.weight|\.q_lin\.weight)$")


def forward_flops(shapes: dict[str, list[int]], config: dict, batch: int, seq_len: int) -> int:
    shared_repeat = 1
    if config.get("model_type") == "albert":
        shared_repeat = config["num_hidden_layers"] // max(1, config.get("num_hidden_groups", 1))
    tokens = batch * seq_len
    total = 0
    for name, shape in shapes.items():
        if len(shape) != 2 or name.endswith("embeddings.weight") or "classifier" in name:
            continue
        out_dim, in_dim = shape
        repeat = shared_repeat if "albert_layer_groups" in name else 1
        per = batch if "pooler" in name else tokens
        total += 2 * in_dim * out_dim * per * repeat
        if _QUERY.search(name):
            total += 4 * batch * seq_len * seq_len * out_dim * repeat
    return total
