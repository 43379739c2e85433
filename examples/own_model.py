"""Your own model, end to end on CPU in well under a minute: a torchvision ResNet-18 with random weights
(no download), quantized to int8 by flatenn, calibrated, attacked with bit flips and stuck-at faults
through a data loader, and measured for sharpness. Prints the campaign table and the time per trial
beside one clean forward pass.

    python examples/own_model.py
"""

from __future__ import annotations

import time

import torch
import torchvision

from flatenn import calibrate_activations, quantize_model
from flatenn.analysis.sharpness import average_sharpness, hessian_lambda_max, weight_space
from flatenn.analysis.stats import summarize_campaign
from flatenn.core.evaluate import evaluate
from flatenn.core.quant import frozen
from flatenn.faults.campaign import run_campaign

torch.manual_seed(0)
torch.set_num_threads(2)

# a model flatenn did not build, and data as a loader (random images; labels from the model itself, so that
# the clean accuracy is 100% and every point lost is lost to faults)
model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
images = torch.randn(96, 3, 32, 32)
quantize_model(model)  # every Conv2d / Linear -> int8 weights and int8 layer inputs, in place
calibrate_activations(model, [images[i : i + 32] for i in range(0, 96, 32)])
model.eval()
with torch.no_grad():
    labels = model(images).argmax(1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=64)

with frozen(model):  # campaigns run on the frozen integer codes, so the fair baseline does too
    evaluate(model, images, labels, batch_size=64)  # warm-up: the first pass pays one-time setup costs
    t0 = time.perf_counter()
    clean_acc, _ = evaluate(model, images, labels, batch_size=64)
    clean_s = time.perf_counter() - t0

rows = []
for fault in ("bitflip", "stuck1"):
    t0 = time.perf_counter()
    df = run_campaign(
        model, loader, None, fault, rates=[1e-5, 1e-4, 1e-3], trials=6, seed=0, model_id="resnet18", progress=False
    )
    per_trial = (time.perf_counter() - t0) / (3 * 6 + 1)  # 18 trials + the clean pass
    rows.append(
        summarize_campaign(df)[
            [
                "fault_model",
                "rate",
                "trials",
                "accuracy_mean",
                "accuracy_ci_low",
                "accuracy_ci_high",
                "faulty_bits_mean",
            ]
        ]
    )
    print(
        f"{fault}: {1000 * per_trial:.0f} ms per trial vs {1000 * clean_s:.0f} ms for one clean pass "
        f"({per_trial / clean_s:.2f}x)"
    )
print(f"clean accuracy {clean_acc:.1f}%")
print(__import__("pandas").concat(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))

with weight_space(model, images[:32], labels[:32], batch_size=32) as ws:
    lam = hessian_lambda_max(ws, iters=10, normalize="filter")[0]
    avg = average_sharpness(ws, sigma=0.05, directions=4)
print(
    f"filter-normalized lambda_max {lam['value']:.4g} after {lam['iterations']} power iterations "
    f"(converged: {lam['converged']}), average-case sharpness {avg['value']:.4g} +- {avg['stderr']:.2g}"
)
if not lam["converged"]:
    print(
        "  lambda_max did not converge in 10 iterations (a demo budget): read it as a lower bound on the largest "
        "eigenvalue; for a number to report, pass iters=100 or more (the scales use 100) and check converged"
    )
