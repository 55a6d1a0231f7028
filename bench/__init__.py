"""backbone-bench: which way to run a transformer backbone is fastest for the accuracy you can afford."""

__version__ = "0.1.0"
