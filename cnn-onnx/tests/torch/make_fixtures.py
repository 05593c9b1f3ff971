"""Makes the PyTorch fixtures of cnn-onnx's import test (tests/import_torch.rs).

Each net is built with torch.nn (seeded), put in eval mode, exported with
torch.onnx.export (the TorchScript exporter, opset 13), and run on a seeded
input; `NAME/model.onnx` and `NAME/io.npz` (x: NCHW input, y: PyTorch's
output) are written next to this file. Run with a Python that has torch,
onnx and numpy:

    python cnn-onnx/tests/torch/make_fixtures.py

With `--dynamo` it writes `dynamo/NAME/` instead: the same nets exported by
`torch.onnx.export`'s default since torch 2.9, the dynamo exporter (opset
18+, static shapes, batchnorm folded into the convs, the weights in an
external `model.onnx.data` file; it needs onnxscript).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class LeNet5(nn.Module):
    """LeNet-5 as the PyTorch tutorials write it (28x28 input, padding 2,
    `view` to flatten)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        # The tutorials' flatten: a Shape, Gather, Unsqueeze, Concat chain
        # feeding a Reshape in the file.
        x = x.view(x.size(0), -1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return torch.softmax(self.fc3(x), dim=1)


class Basic(nn.Module):
    """ResNet's basic block, with a 1x1 projection when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = Basic(8, 8, 1)
        self.layer2 = Basic(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Mixed(nn.Module):
    """Depthwise and grouped convs, the activations, padded pools, a concat,
    a transposed conv, nearest upsampling, dropout and a BatchNorm1d."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.pw = nn.Conv2d(8, 8, 1, groups=2)
        self.a = nn.Conv2d(8, 4, 1)
        self.b = nn.AvgPool2d(3, 1, 1)  # count_include_pad=True
        self.c = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.d = nn.Conv2d(8, 4, 3, padding=2, dilation=2)
        self.up = nn.ConvTranspose2d(24, 6, 4, stride=2, padding=1)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(6 * 16 * 16, 12)
        self.bn = nn.BatchNorm1d(12)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        x = nn.functional.relu6(self.dw(x))
        x = nn.functional.hardswish(self.pw(x))
        a = nn.functional.leaky_relu(self.a(x), 0.1)
        b = nn.functional.silu(self.b(x))
        c = nn.functional.gelu(self.c(x))
        d = nn.functional.elu(self.d(x))
        x = torch.cat([a, b, c, d], 1)
        x = torch.sigmoid(self.up(x))
        x = self.pool(x)
        x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        x = self.drop(torch.flatten(x, 1))
        x = nn.functional.hardsigmoid(self.bn(self.fc(x)))
        return self.out(x)


def randomize_bn(net, g):
    """Moving statistics and affine parameters that are not the defaults."""
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def strip_metadata(path):
    """Drops the dynamo exporter's per-node metadata (Python stack traces
    with this machine's paths), keeping the external data as written."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    for n in model.graph.node:
        del n.metadata_props[:]
        n.doc_string = ""
    del model.metadata_props[:]
    model.graph.doc_string = ""
    onnx.save(model, path)


def make(name, net, shape, seed, dynamo=False):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        randomize_bn(net, g)
    net.eval()
    x = torch.randn(*shape, generator=g)
    with torch.no_grad():
        y = net(x)
    out = os.path.join(HERE, "dynamo", name) if dynamo else os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    if dynamo:
        path = os.path.join(out, "model.onnx")
        torch.onnx.export(
            net, (x,), path, input_names=["x"], output_names=["y"],
            dynamo=True, external_data=True,
        )
        strip_metadata(path)
    else:
        torch.onnx.export(
            net, (x,), os.path.join(out, "model.onnx"), opset_version=13,
            input_names=["x"], output_names=["y"], dynamo=False,
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
        )
    np.savez(os.path.join(out, "io.npz"), x=x.numpy().astype(np.float32), y=y.numpy().astype(np.float32))
    print(name, tuple(y.shape), os.path.getsize(os.path.join(out, "model.onnx")), "bytes")


if __name__ == "__main__":
    dynamo = "--dynamo" in sys.argv[1:]
    make("lenet5", LeNet5(), (2, 1, 28, 28), 1, dynamo)
    make("tiny_resnet", TinyResNet(), (2, 3, 16, 16), 2, dynamo)
    make("mixed", Mixed(), (2, 4, 8, 8), 3, dynamo)
