"""ResNet-110 training throughput (images/s): Keras (float32, mixed_bfloat16) against a PyTorch reference.

    KERAS_BACKEND=jax python benchmarks/resnet_throughput.py               # GPU: batch 128; target >= 2x torch_eager
    KERAS_BACKEND=jax python benchmarks/resnet_throughput.py --depth 20 --batch-size 8 --steps 2   # CPU smoke run

Rows, timed interleaved in one run (each a full training step: forward,
backward, SGD with momentum 0.9 and weight decay, BN statistics):
- `keras_float32`: the zoo's `resnet{depth}` with `train_on_batch`
  (jit-compiled by XLA on the JAX backend);
- `keras_mixed_bfloat16`: the same under the `mixed_bfloat16` policy;
- `torch_eager`: the PyTorch reference network below (basic blocks, option-A
  shortcuts), plain eager PyTorch, on CUDA when available.
Images/s = batch / median step time; ratios are against `torch_eager`.
"""

import argparse
import os
import sys

import numpy as np

from keras_deepblocks.zoo.registry import build_model
from keras_deepblocks.zoo.registry import resnet_units_per_stage
from keras_deepblocks.zoo.resnet_cifar import IMAGENET_MEAN
from keras_deepblocks.zoo.resnet_cifar import IMAGENET_STD

sys.path.insert(0, os.path.dirname(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=110, help="6n+2 (default: 110)")
    parser.add_argument("--batch-size", type=int, default=128, help="default: 128")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round (default: 10)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: 5)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    args = parser.parse_args(argv)
    try:
        resnet_units_per_stage(args.depth, "--depth")
    except ValueError as error:
        parser.error(str(error))
    return args


def keras_step(depth, images, labels, dtype_policy):
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        model = build_model(
            f"resnet{depth}", (32, 32, 3), 10, kernel_regularizer=keras.regularizers.L2(1e-4)
        )
    finally:
        keras.config.set_dtype_policy(previous)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return lambda: model.train_on_batch(images, labels)


def torch_step(depth, images, labels):
    """A training step of a plain PyTorch CIFAR ResNet (the reference's layout)."""
    import torch
    from torch import nn
    from torch.nn import functional

    class BasicBlock(nn.Module):
        def __init__(self, in_planes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.stride = stride
            self.extra = planes - in_planes

        def forward(self, x):
            out = self.bn2(self.conv2(functional.relu(self.bn1(self.conv1(x)))))
            shortcut = x[:, :, :: self.stride, :: self.stride]
            if self.extra:
                half = self.extra // 2
                shortcut = functional.pad(shortcut, (0, 0, 0, 0, half, self.extra - half))
            return functional.relu(out + shortcut)

    class ResNet(nn.Module):
        def __init__(self, depth):
            super().__init__()
            n = resnet_units_per_stage(depth)
            self.stem = nn.Sequential(
                nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
            )
            blocks, in_planes = [], 16
            for stage, planes in enumerate((16, 32, 64)):
                for index in range(n):
                    blocks.append(BasicBlock(in_planes, planes, 2 if stage and not index else 1))
                    in_planes = planes
            self.blocks = nn.Sequential(*blocks)
            self.linear = nn.Linear(64, 10)

        def forward(self, x):
            return self.linear(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ResNet(depth).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    # The normalization `build_model` includes (`include_preprocessing=True`).
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (
        ((torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0 - mean) / std)
        .contiguous()
        .to(device)
    )
    y = torch.from_numpy(labels).long().to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step, device


def main(argv=None):
    args = parse_args(argv)
    import keras

    from _timing import accelerator
    from _timing import interleaved_medians

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (args.batch_size, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, args.batch_size)
    steps = {
        "keras_float32": keras_step(args.depth, images, labels, "float32"),
        "keras_mixed_bfloat16": keras_step(args.depth, images, labels, "mixed_bfloat16"),
    }
    torch_device = None
    if not args.no_torch:
        steps["torch_eager"], torch_device = torch_step(args.depth, images, labels)
    times, _ = interleaved_medians(steps, rounds=args.rounds, repeats=args.steps, warmup=2)

    print(
        f"ResNet-{args.depth} training, batch {args.batch_size}, Keras backend "
        f"{keras.backend.backend()} on {accelerator() or 'cpu'}"
        + (f", torch on {torch_device}" if torch_device else "")
    )
    reference = times.get("torch_eager")
    for name, seconds in times.items():
        ratio = f"  {reference / seconds:5.2f}x torch_eager" if reference else ""
        print(f"  {name:<22} {args.batch_size / seconds:10.1f} images/s{ratio}")


if __name__ == "__main__":
    main()
