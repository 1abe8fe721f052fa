"""Export the held-out architectures of benchmarks/predict_validation.py to ONNX: timm nets nobody here wrote.

Random init (seeded), eval mode, 224 x 224, batch 1, opset 17 through torch's TorchScript exporter (the path
mnbench's own exports take), BatchNorm folded by the exporter. Re-parameterisable nets (RepVGG, MobileOne) are
reparameterised first, as they are deployed. timm needs torchvision, which cannot live beside mnbench's torch, so
this runs in its own venv:

    /work/zoo-venv/bin/python benchmarks/zoo_export.py            # writes models/zoo/<name>.onnx (git-ignored)
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
import timm

# Residual, grouped, fused-MBConv, large-kernel depthwise, ghost, re-parameterised, and three NAS-found nets.
ZOO = ("resnet18", "resnext26ts", "regnetx_002", "efficientnetv2_rw_t", "convnext_atto", "ghostnet_100",
       "repvgg_a0", "mobileone_s0", "efficientnet_b0", "mnasnet_100", "lcnet_050", "resnet50")
OUT = Path(__file__).resolve().parents[1] / "models" / "zoo"
SEED = 0


def export(name: str, out_dir: Path) -> Path:
    torch.manual_seed(SEED)
    model = timm.create_model(name, pretrained=False, num_classes=1000).eval()
    if hasattr(timm.utils, "reparameterize_model"):
        model = timm.utils.reparameterize_model(model)  # RepVGG / MobileOne as deployed; a no-op elsewhere
    path = out_dir / f"{name}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), opset_version=17, dynamo=False,
                          input_names=["input"], output_names=["logits"], do_constant_folding=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(ZOO))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for name in args.names:
        path = export(name, args.out)
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
