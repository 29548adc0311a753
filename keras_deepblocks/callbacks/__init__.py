"""Training callbacks: highway gate diagnostics."""

from keras_deepblocks.callbacks.gate_monitor import GateMonitor

__all__ = ["GateMonitor"]
