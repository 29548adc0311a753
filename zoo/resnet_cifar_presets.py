"""The published weights of the CIFAR ResNets, as data: one entry per checkpoint file.

The PyTorch reference implementation (github.com/akamaster/pytorch_resnet_cifar10,
BSD-2-Clause) publishes a CIFAR-10 checkpoint for each of the paper's depths;
`resnet_cifar(depth, weights="cifar10")` loads the one of its depth (the code
is in `resnet_cifar_weights`). Each entry holds:

- `depth` and `dataset`: the network, and what `weights=` names;
- `url` of the PyTorch checkpoint file (a legacy `torch.save` pickle);
- `sha256`: the full digest where known, otherwise its first 8 hex digits,
  which the file name carries;
- `parameters`: trainable parameters of the network (the paper's "0.27M");
- `paper_error`: CIFAR-10 test error in % of the paper's network of that
  depth (He et al. 2015, Table 6), not of this checkpoint;
- `accuracy`: the CIFAR-10 test accuracy in % the file itself records
  (`best_prec1`), where read from the file here, else `None`.

The networks were trained on images scaled to [0, 1] and normalized with
ImageNet's mean and std (`resnet_cifar.IMAGENET_MEAN`, `IMAGENET_STD`).
"""

_ROOT = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models"

RESNET_CIFAR_PRESETS = {
    "resnet20_cifar10": {
        "depth": 20,
        "dataset": "cifar10",
        "url": f"{_ROOT}/resnet20-12fca82f.th",
        "sha256": "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
        "parameters": 269_722,
        "paper_error": 8.75,
        "accuracy": 91.78,
    },
    "resnet32_cifar10": {
        "depth": 32,
        "dataset": "cifar10",
        "url": f"{_ROOT}/resnet32-d509ac18.th",
        "sha256": "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850",
        "parameters": 464_154,
        "paper_error": 7.51,
        "accuracy": None,
    },
    "resnet44_cifar10": {
        "depth": 44,
        "dataset": "cifar10",
        "url": f"{_ROOT}/resnet44-014dd654.th",
        "sha256": "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4",
        "parameters": 658_586,
        "paper_error": 7.17,
        "accuracy": None,
    },
    "resnet56_cifar10": {
        "depth": 56,
        "dataset": "cifar10",
        "url": f"{_ROOT}/resnet56-4bfd9763.th",
        "sha256": "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
        "parameters": 853_018,
        "paper_error": 6.97,
        "accuracy": 93.62,
    },
    "resnet110_cifar10": {
        "depth": 110,
        "dataset": "cifar10",
        "url": f"{_ROOT}/resnet110-1d1ed7c2.th",
        "sha256": "1d1ed7c2",
        "parameters": 1_727_962,
        "paper_error": 6.43,
        "accuracy": None,
    },
    "resnet1202_cifar10": {
        "depth": 1202,
        "dataset": "cifar10",
        "url": f"{_ROOT}/resnet1202-f3b1deed.th",
        "sha256": "f3b1deed",
        "parameters": 19_421_274,
        "paper_error": 7.93,
        "accuracy": None,
    },
}
