"""Experiment scales: which data, model, training budget, fault sweep and metrics each one uses.

``smoke`` (digits, CPU, minutes) is the embedded default; ``cpu`` (Fashion-MNIST, CPU, under an
hour); ``paper_resnet20`` / ``paper_resnet18`` (CIFAR-10, GPU, hours), grouped as ``paper``.

The informative rate ranges (used for the claims' primary effects) were fixed from where the
*standard SGD* model of each scale loses between about 1 and 50 accuracy points — the pilot's
lesson that the signal lives in a narrow range — before any comparison between variants was made. For ``smoke`` that was read off a standard SGD
digits model; for ``cpu`` off a pilot standard SGD ResNet-8 (seed 99, 4 epochs, 8 trials, not one
of the experiment's models): bit flips cost 7/10/35/58 points at 1e-3/3e-3/1e-2/3e-2, stuck-at-1
2/3/10/28 points at 1e-3/3e-3/1e-2/3e-2. The ``paper`` ranges are a priori guesses to be fixed
by the same rule after a first GPU run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..core.train import TrainConfig

# variant name -> (activation, training method); a scale lists its own (ScaleConfig.variants), these by default
VARIANTS: dict[str, tuple[str, str]] = {
    "standard-sgd": ("relu", "sgd"),
    "sparse-sgd": ("fatrelu", "sgd"),
    "standard-saq": ("relu", "saq"),
    "sparse-saq": ("fatrelu", "saq"),
}
MAIN_VARIANTS = tuple(VARIANTS)

# Mitigations: one documented hyper-parameter choice per method, from its paper, never tuned on fault
# results. A variant is (activation, method) or (activation, method, settings); settings are TrainConfig fields
# and/or "protection", an inference-time protection its campaigns run under (flatenn.faults.protection), on the
# model of the same activation and method (the same training config, so the same cached model).
METHOD_SETTINGS: dict[str, dict] = {
    "sam": {"rho": 0.05},  # Foret et al., ICLR 2021 (their CIFAR setting)
    "asam": {"rho": 0.5, "eta": 0.01},  # Kwon et al., ICML 2021 (their CIFAR setting)
    "randbet": {"p_train": 0.01, "w_max": 0.1},  # Stutz et al., MLSys 2021: RandBET at p = 1% with clipping 0.1
    "clip": {"w_max": 0.1},  # Stutz et al., MLSys 2021: weight clipping alone
    # Pranto et al. (arXiv 2504.01933): Hutchinson trace penalty; its weight is the bit-flip error variance at
    # RandBET's training rate (plans/mitigations.md, amendment 2), not a tuned coefficient
    "hessian": {"p_train": 0.01},
}
SAQ_RHO_GRID = (0.02, 0.1)  # beside the scales' rho = 0.05: SAQ at a small grid of radii
PROTECTION_VARIANTS = ("sign-bit", "secded", "ranger", "ft-clipact")


def mitigation_variants() -> dict[str, tuple]:
    """Every mitigation variant, for standard and activation-sparse models (names ``<kind>-<method>[...]``)."""
    out: dict[str, tuple] = {}
    for kind, act in (("standard", "relu"), ("sparse", "fatrelu")):
        out.update({f"{kind}-saq-rho{r:g}": (act, "saq", {"rho": r}) for r in SAQ_RHO_GRID})
        out.update({f"{kind}-{m}": (act, m, dict(st)) for m, st in METHOD_SETTINGS.items()})
        out.update({f"{kind}-sgd+{p}": (act, "sgd", {"protection": p}) for p in PROTECTION_VARIANTS})
    return out


MITIGATION_VARIANTS = mitigation_variants()


@dataclass(frozen=True)
class ScaleConfig:
    """Everything one scale fixes; recorded in ``provenance.json``."""

    name: str
    dataset: str
    model: str
    width: int
    epochs: int
    batch_size: int
    lr: float
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    rho: float = 0.05
    sparse_threshold: float = 0.5
    sparse_init: str = "scratch"  # or "finetune": from the standard model of the same seed/optimizer
    finetune_epochs: int = 5
    sweep_thresholds: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    sweep_fault_model: str = "bitflip"
    train_subset: int | None = None
    test_subset: int | None = None
    w_bits: int = 8
    a_bits: int | None = 8
    fault_models: tuple[str, ...] = ("bitflip", "stuck0", "stuck1")
    rates: tuple[float, ...] = (3e-3, 1e-2, 3e-2, 6e-2, 1e-1, 2e-1)
    informative_rates: dict[str, tuple[float, ...]] = field(default_factory=dict)
    trials: int = 50
    campaign_seed: int = 2023
    eval_examples: int | None = None
    eval_batch_size: int = 512
    sharpness_examples: int = 512
    sharpness_seed: int = 7
    sharpness_probes: int = 20
    sharpness_directions: int = 20
    sharpness_sigma: float = 0.05
    sharpness_iters: int = 100  # power-iteration cap for lambda_max (residual tolerance 1e-3)
    sharpness_metrics: tuple[str, ...] = (
        "lambda_max",
        "lambda_max_fn",
        "trace_fn",
        "avg_sharpness",
        "eps_sharpness",
        "landscape1d",
        "bit_sensitivity",
    )
    ranger_examples: int = 2048  # training images (the first ones of the split) Ranger's activation bounds come from
    clipact_examples: int = 512  # training images (the first ones) FT-ClipAct's thresholds are chosen on
    clipact_trials: int = 10  # fault maps per candidate threshold and rate in FT-ClipAct's search
    sensitivity_rate: float = 3e-3  # bit-flip rate at which bit_sensitivity predicts the loss increase
    device: str = "auto"
    torch_threads: int | None = None
    sparse_target: float | None = None  # finetune: calibrate one global threshold to this activation sparsity
    claims: tuple[str, ...] | None = None  # the claims this scale evaluates (None: all)
    level_of: str | None = None  # ablation levels: the factor this level belongs to
    # name -> (activation, method) or (activation, method, settings); see MITIGATION_VARIANTS
    variants: dict[str, tuple] = field(default_factory=lambda: dict(VARIANTS))
    # plan v2: every training seed draws its own evaluation images (when eval_examples < the test split),
    # sharpness subset and sharpness probes, so their variance is inside the CI over seeds (v1: one draw for all)
    inputs_per_seed: bool = False
    plan_version: int = 1  # 2: seeds and analysis by flatenn/repro/plans/v2.toml (group-sequential looks)

    def __hash__(self) -> int:  # informative_rates is a dict
        return hash(self.name)

    def sweep_variants(self) -> dict[str, float]:
        """Sweep variant name -> threshold (thresholds equal to 0 / the sparse one reuse main models)."""
        out = {}
        for t in self.sweep_thresholds:
            if t == 0.0:
                out["standard-sgd"] = 0.0
            elif t == self.sparse_threshold:
                out["sparse-sgd"] = t
            else:
                out[f"sweep-t{t:g}"] = t
        return out

    def all_variants(self) -> tuple[str, ...]:
        return tuple(self.variants) + tuple(v for v in self.sweep_variants() if v not in self.variants)

    def variant_spec(self, variant: str) -> tuple[str, str, dict, str]:
        """(activation, method, TrainConfig settings, protection) of one of this scale's variants."""
        if variant.startswith("sweep-t"):
            return "fatrelu", "sgd", {}, "none"
        if variant not in self.variants:
            raise ValueError(f"unknown variant {variant!r}; known: {self.all_variants()}")
        act, method, *rest = self.variants[variant]
        settings = dict(rest[0]) if rest else {}
        protection = settings.pop("protection", "none")
        return act, method, settings, protection

    def protection(self, variant: str) -> str:
        """The inference-time protection the variant's campaigns run under (``none`` for most)."""
        return self.variant_spec(variant)[3]

    def train_config(self, variant: str, seed: int) -> TrainConfig:
        """The training config of one variant and seed at this scale."""
        base = dict(
            dataset=self.dataset,
            model=self.model,
            width=self.width,
            w_bits=self.w_bits,
            a_bits=self.a_bits,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=seed,
            rho=self.rho,
            train_subset=self.train_subset,
            test_subset=self.test_subset,
        )
        act, opt, settings, _ = self.variant_spec(variant)
        base.update(settings)
        if variant.startswith("sweep-t"):
            threshold = float(variant[len("sweep-t") :])
        else:
            threshold = self.sparse_threshold if act == "fatrelu" else 0.0
        if act == "fatrelu" and self.sparse_init == "finetune":
            parent = TrainConfig(**base, activation="relu", optimizer=opt)
            ft = {**base, "epochs": self.finetune_epochs, "lr": self.lr / 10}
            target = self.sparse_target if not variant.startswith("sweep-t") else None
            return TrainConfig(
                **ft, activation="fatrelu", threshold=threshold, optimizer=opt, parent=parent, target_sparsity=target
            )
        return TrainConfig(**base, activation=act, threshold=threshold, optimizer=opt)

    def model_id(self, variant: str, seed: int) -> str:
        return f"{variant}-s{seed}"

    def map_seed(self, train_seed: int) -> int:
        """Fault-map seed of every model trained with ``train_seed``.

        Variants of one training seed share their maps (paired comparisons); different training seeds
        see different maps, so the CI over seeds contains fault-map variation too.
        """
        return self.campaign_seed * 1000 + train_seed

    def sharpness_seed_for(self, train_seed: int) -> int:
        """Seed of the sharpness subset and probes of the models of ``train_seed`` (one for all under v1)."""
        return self.sharpness_seed * 1000 + train_seed if self.inputs_per_seed else self.sharpness_seed


_STUCK = (3e-2, 6e-2, 1e-1)

SCALES: dict[str, ScaleConfig] = {
    "smoke": ScaleConfig(
        name="smoke",
        dataset="digits",
        model="cnn_digits",
        width=8,
        epochs=20,
        batch_size=64,
        lr=0.05,
        informative_rates={"bitflip": (1e-2, 3e-2, 6e-2), "stuck0": _STUCK, "stuck1": _STUCK},
        torch_threads=2,
        inputs_per_seed=True,
        plan_version=2,
    ),
    "cpu": ScaleConfig(
        name="cpu",
        dataset="fashion_mnist",
        model="resnet8",
        width=8,
        epochs=6,
        batch_size=128,
        lr=0.05,
        train_subset=10000,
        test_subset=2000,
        eval_examples=300,
        rates=(3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        trials=50,
        informative_rates={"bitflip": (1e-3, 3e-3, 1e-2), "stuck0": (3e-3, 1e-2, 3e-2), "stuck1": (3e-3, 1e-2, 3e-2)},
        sharpness_examples=256,
        sensitivity_rate=1e-3,
        torch_threads=2,
        inputs_per_seed=True,
        plan_version=2,
    ),
    "paper_resnet20": ScaleConfig(
        name="paper_resnet20",
        dataset="cifar10",
        model="resnet20",
        width=16,
        epochs=200,
        batch_size=128,
        lr=0.1,
        sparse_init="finetune",
        finetune_epochs=30,
        trials=100,
        eval_batch_size=1000,
        rates=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        informative_rates={"bitflip": (1e-4, 3e-4, 1e-3), "stuck0": (3e-4, 1e-3, 3e-3), "stuck1": (3e-4, 1e-3, 3e-3)},
        sharpness_examples=2048,
        sensitivity_rate=1e-4,
    ),
    "paper_resnet18": ScaleConfig(
        name="paper_resnet18",
        dataset="cifar10",
        model="resnet18",
        width=64,
        epochs=200,
        batch_size=128,
        lr=0.1,
        sparse_init="finetune",
        finetune_epochs=30,
        trials=100,
        eval_batch_size=1000,
        rates=(1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3),
        informative_rates={"bitflip": (1e-5, 3e-5, 1e-4), "stuck0": (3e-5, 1e-4, 3e-4), "stuck1": (3e-5, 1e-4, 3e-4)},
        sharpness_examples=2048,
        sensitivity_rate=1e-5,
    ),
}
# Ablation levels (flatenn/repro/ablation_plan.md): the cpu baseline with one setting moved toward the paper.
ABLATION_CLAIMS = ("sparse_vs_standard", "saq_gain_sparse", "saq_gain_standard")
_ABL_BASE = dataclasses.replace(
    SCALES["cpu"],
    name="ablation_base",
    seeds=(0, 1, 2),
    trials=30,
    claims=ABLATION_CLAIMS,
    level_of="baseline",
    inputs_per_seed=False,  # recorded under plan v1: one evaluation set for every model, fixed seeds
    plan_version=1,
)
ABLATION_LEVELS: dict[str, ScaleConfig] = {
    "ablation_base": _ABL_BASE,
    **{
        f"ablation_finetune{int(100 * t)}": dataclasses.replace(
            _ABL_BASE,
            name=f"ablation_finetune{int(100 * t)}",
            sparse_init="finetune",
            finetune_epochs=2,
            sparse_target=t,
            level_of="how sparse models are made",
        )
        for t in (0.60, 0.75, 0.90)
    },
    "ablation_actfloat": dataclasses.replace(
        _ABL_BASE, name="ablation_actfloat", a_bits=None, level_of="activation quantization"
    ),
    "ablation_eval1000": dataclasses.replace(
        _ABL_BASE, name="ablation_eval1000", eval_examples=1000, level_of="evaluation set"
    ),
    "ablation_converged": dataclasses.replace(
        _ABL_BASE, name="ablation_converged", train_subset=None, epochs=5, level_of="training length"
    ),
    "ablation_width16": dataclasses.replace(_ABL_BASE, name="ablation_width16", width=16, level_of="width"),
}
SCALES.update(ABLATION_LEVELS)
# The mitigations family (plan: flatenn/repro/plans/mitigations.md): smoke's setting with every
# mitigation variant, a fixed design of 18 seeds (82% power at the 2-point SESOI, Holm over 22 cases), the
# Hessian trace as the only sharpness metric (does it predict a method's gain?).
SCALES["mitigations_smoke"] = dataclasses.replace(
    SCALES["smoke"],
    name="mitigations_smoke",
    seeds=tuple(range(18)),
    variants={**VARIANTS, **MITIGATION_VARIANTS},
    claims=("mitigations",),
    sharpness_metrics=("trace_fn",),
    plan_version=1,
)
# The family at cpu (plan: flatenn/repro/plans/mitigations_cpu.md): the methods the budget allows. cpu's SGD and
# SAQ models are the cpu scale's own (same training configs, so the same cached models); the inference-time and
# hardware protections need no training and weight clipping one cheap SGD run; 20 trials per point.
CPU_MITIGATION_METHODS = ("clip", *(f"sgd+{p}" for p in PROTECTION_VARIANTS))
SCALES["mitigations_cpu"] = dataclasses.replace(
    SCALES["cpu"],
    name="mitigations_cpu",
    seeds=tuple(range(10)),
    trials=20,
    variants={
        **VARIANTS,
        **{v: spec for v, spec in MITIGATION_VARIANTS.items() if v.split("-", 1)[1] in CPU_MITIGATION_METHODS},
    },
    claims=("mitigations",),
    sharpness_metrics=("trace_fn",),
    plan_version=1,
)
SCALE_GROUPS: dict[str, tuple[str, ...]] = {
    "paper": ("paper_resnet20", "paper_resnet18"),
    "ablation": tuple(ABLATION_LEVELS),
    "mitigations": ("mitigations_smoke", "mitigations_cpu"),
}
DEFAULT_SCALE = "smoke"


def expand_scales(names: str) -> list[str]:
    """``"smoke,cpu"`` or a group (``"paper"``) -> scale names; unknown names raise."""
    out: list[str] = []
    for n in (s.strip() for s in names.split(",") if s.strip()):
        if n in SCALE_GROUPS:
            out += SCALE_GROUPS[n]
        elif n in SCALES:
            out.append(n)
        else:
            raise ValueError(f"unknown scale {n!r}; known: {sorted(SCALES) + sorted(SCALE_GROUPS)}")
    return out


def get_scale(name: str) -> ScaleConfig:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; known: {sorted(SCALES)} (groups: {sorted(SCALE_GROUPS)})")
    return SCALES[name]
