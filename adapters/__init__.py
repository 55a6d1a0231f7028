"""Runtime adapters: the only place a framework is imported. One module per runtime; see base.py."""

import logging

# transformers imports torchao wherever it is installed (the torch environment has it for the torchao runtime), and
# in every torch process (fine-tunes included) torchao then logs one warning per CUDA kernel library it cannot load
# on a CPU-only torch, and torch one per Enum torchao registers the old way. Their errors still show.
for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)
