"""Regression gate: compare two result sets cell by cell and say whether NEW is worse than BASE.

A change is a regression only when it is both beyond its threshold and significant (bench.gate.judge says
how, with repeated runs too). The parts: `rules` (thresholds per cell, from defaults, a TOML file and CLI
flags), `change` (verdicts, one Change per metric, the Comparison), `judge` (matching cells and reaching
verdicts; the tests are in bench.stats), `render` (the Markdown table). Baselines are stored by bench.store.
"""
