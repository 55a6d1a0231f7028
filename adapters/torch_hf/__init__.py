"""The torch + HF transformers runtime: the reference configuration runs here."""
