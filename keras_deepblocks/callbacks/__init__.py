"""Training callbacks: highway gate diagnostics, gradient flow and signal RMS per layer."""

from keras_deepblocks.callbacks.gate_activity import GateActivity
from keras_deepblocks.callbacks.gate_monitor import GateMonitor
from keras_deepblocks.callbacks.gradient_flow import GradientFlow
from keras_deepblocks.callbacks.signal_rms import SignalRMS

__all__ = ["GateActivity", "GateMonitor", "GradientFlow", "SignalRMS"]
