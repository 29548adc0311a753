from keras_deepblocks.initializers.depth_scaled import DepthScaled
from keras_deepblocks.initializers.fused_kernel import FusedKernel
from keras_deepblocks.initializers.gate_bias import GateBias
from keras_deepblocks.initializers.gate_bias import highway_transform_bias

__all__ = ["DepthScaled", "FusedKernel", "GateBias", "highway_transform_bias"]
