"""Inference-time protections of a frozen model under weight-memory faults, as a registry.

A protection changes what a fault campaign measures without retraining: which stored bits can be faulty
(sign-bit protection), what the memory reads back (SECDED ECC), or what the network computes on the
values it reads (Ranger activation clipping). Each has a name (the campaign's ``protection`` column) and
a memory overhead (fraction of the weight memory it adds). :func:`flatenn.faults.campaign.run_campaign`
takes one by name or as an object (``protection="secded"``).

Built in:
- ``sign-bit``: ideal ECC or TMR on bit b-1 only; those bits are fault-free. Overhead declared as 1/b
  (one extra bit per b-bit code, as for a parity-protected sign; real TMR stores two more copies, 2/b).
- ``secded``: SECDED over 64-bit words of stored codes (:mod:`flatenn.faults.ecc`; overhead 8/64).
- ``ranger``: activation outputs clipped at bounds profiled on clean *training* data (Chen et al., DSN
  2021; :mod:`flatenn.core.clipping`); needs those bounds: ``Ranger(profile_bounds(model, x_train))``.
- ``ft-clipact``: activation outputs above a per-layer threshold set to 0 (Hoang et al., DATE 2020), the
  thresholds chosen by a fault-injection search on images that are not the test set
  (:func:`flatenn.faults.ft_clipact.select_thresholds`): ``FTClipAct(thresholds)``.

Adding one takes a subclass with a ``name`` registered with :func:`register_protection`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from ..core.clipping import clipped
from .ecc import OVERHEAD as SECDED_OVERHEAD


class Protection:
    """An inference-time protection; the base class protects nothing (``none``).

    A protection is one subclass registered with :func:`register_protection`: its ``name`` (the campaign rows'
    ``protection`` column and what :func:`get_protection` finds), and any of: ``ecc`` (an error-correction scheme
    of the :class:`flatenn.faults.injector.FaultInjector`), :meth:`bit_positions` (bits it keeps fault-free),
    :meth:`overhead` (its memory cost), :meth:`applied` (how the model runs under it, e.g. clipping hooks).
    ``run_campaign(..., protection=...)`` applies it to clean and faulty evaluations alike.
    """

    name: ClassVar[str] = "none"
    ecc: ClassVar[str | None] = None  # the FaultInjector's error correction
    needs_data: ClassVar[bool] = False  # built from clean training data (e.g. activation bounds)
    built_by: ClassVar[str] = ""  # for one that needs data: what it needs and the call that builds it

    @classmethod
    def overhead(cls, bits: int) -> float:
        """Memory added, as a fraction of the weight memory of b-bit codes."""
        return 0.0

    @classmethod
    def bit_positions(cls, bits: int) -> list[int] | None:
        """The bit positions faults can hit (None: all)."""
        return None

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """The model as it runs under this protection (clean and faulty evaluations alike)."""
        yield model

    @property
    def label(self) -> str:
        """The campaign table's ``protection`` value (the name)."""
        return self.name

    @property
    def transforms(self) -> bool:
        """Whether it changes the computation (then a campaign runs full forwards, no prefix reuse)."""
        return type(self).applied is not Protection.applied


class SignBit(Protection):
    name = "sign-bit"

    @classmethod
    def overhead(cls, bits: int) -> float:
        return 1.0 / bits

    @classmethod
    def bit_positions(cls, bits: int) -> list[int]:
        return list(range(bits - 1))


class SECDED(Protection):
    name = "secded"
    ecc = "secded"

    @classmethod
    def overhead(cls, bits: int) -> float:
        return SECDED_OVERHEAD


@dataclass
class Ranger(Protection):
    """Activation clipping at per-module bounds (from :func:`flatenn.core.clipping.profile_bounds`)."""

    bounds: Mapping[str, float] = field(default_factory=dict)
    name: ClassVar[str] = "ranger"
    needs_data: ClassVar[bool] = True
    built_by: ClassVar[str] = (
        "activation bounds profiled on clean training data: Ranger(flatenn.core.clipping.profile_bounds(model, x_train))"
    )

    def __post_init__(self) -> None:
        if not self.bounds:
            raise ValueError(f"{type(self).__name__} needs {self.built_by}")
        if any(math.isnan(float(b)) for b in self.bounds.values()):
            raise ValueError("an activation bound is NaN")

    @classmethod
    def overhead(cls, bits: int) -> float:
        return 0.0  # one float per activation module: negligible next to the weights

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        with clipped(model, self.bounds):
            yield model


@dataclass
class FTClipAct(Ranger):
    """FT-ClipAct's clipped activations: an output above its module's threshold reads as 0 (not as the threshold)."""

    name: ClassVar[str] = "ft-clipact"
    built_by: ClassVar[str] = (
        "per-layer thresholds chosen on images that are not the test set: "
        "flatenn.faults.ft_clipact.select_thresholds(model, x_select, y_select)"
    )

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        with clipped(model, self.bounds, mode="zero"):
            yield model


PROTECTIONS: dict[str, type[Protection]] = {}


def register_protection(cls: type[Protection]) -> type[Protection]:
    """Register a protection class under ``cls.name`` (a class decorator); a name is registered once."""
    if not cls.name or cls.name in PROTECTIONS and PROTECTIONS[cls.name] is not cls:
        raise ValueError(f"protection name {cls.name!r} is empty or already registered")
    PROTECTIONS[cls.name] = cls
    return cls


for _cls in (Protection, SignBit, SECDED, Ranger, FTClipAct):
    register_protection(_cls)


def get_protection(protection: str | Protection | None) -> Protection:
    """A protection object from a name (``None``/``"none"``: unprotected) or the object itself."""
    if protection is None:
        return Protection()
    if isinstance(protection, Protection):
        return protection
    if protection not in PROTECTIONS:
        raise ValueError(f"unknown protection {protection!r}; registered: {sorted(PROTECTIONS)}")
    cls = PROTECTIONS[protection]
    if cls.needs_data:
        raise ValueError(
            f"protection {protection!r} is built from data (never the test images): pass the object; it needs "
            f"{cls.built_by or cls.__name__ + '(...)'}"
        )
    return cls()
