"""Makes the large PyTorch models of cnnc/tests/import_torchvision.rs in a
folder it is given (they are 14-47 MB each, so they are made when the test
runs, not committed): torchvision's ResNet-18 and MobileNetV2 with random
weights (`weights=None`, seeded) whose batchnorms are given random scales,
shifts and statistics (fresh ones are the identity, which would hide a
wrong channel order), exported by torch.onnx.export (the TorchScript
exporter, opset 13) with the batchnorms kept as BatchNormalization nodes;
`NAME/model.onnx`, and `NAME/x.npy` (NHWC, what `cnnc predict` reads) and
`NAME/y.npy` (PyTorch's output on it).

    python torchvision_models.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torchvision


def randomise_batchnorms(net, g):
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))


def main():
    out = sys.argv[1]
    for name, ctor in [
        ("resnet18", torchvision.models.resnet18),
        ("mobilenet_v2", torchvision.models.mobilenet_v2),
    ]:
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(1)
        net = ctor(weights=None)
        randomise_batchnorms(net, g)
        net.eval()
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        x = torch.rand(2, 3, 224, 224, generator=g)
        torch.onnx.export(
            net,
            (x,),
            os.path.join(d, "model.onnx"),
            opset_version=13,
            dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
        )
        with torch.no_grad():
            y = net(x).numpy()
        np.save(os.path.join(d, "x.npy"), x.numpy().transpose(0, 2, 3, 1).copy())
        np.save(os.path.join(d, "y.npy"), y)
        params = sum(p.numel() for p in net.parameters())
        print(name, params, "parameters", flush=True)


if __name__ == "__main__":
    main()
