from keras_deepblocks.initializers.depth_scaled import DepthScaled
from keras_deepblocks.initializers.fused_kernel import FusedKernel
from keras_deepblocks.initializers.gate_bias import GateBias

__all__ = ["DepthScaled", "FusedKernel", "GateBias"]
