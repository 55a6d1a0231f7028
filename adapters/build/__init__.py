"""Build-time tools that need a framework: ONNX export and quantization, fine-tuning, seeded random weights,
HF-to-GluonNLP weight conversion. The core asks them for a file and publishes it; they never call back into it."""
