"""Pruning methods: one module each, and this registry (a new method is one module plus one line)."""

from __future__ import annotations

from prunestudy.methods.base import Method, TrainHooks
from prunestudy.methods.fisher import Fisher
from prunestudy.methods.l1norm import L1Norm
from prunestudy.methods.magnitude import Magnitude
from prunestudy.methods.regression import Regression
from prunestudy.methods.slimming import Slimming
from prunestudy.methods.sss import SSS
from prunestudy.methods.taylor import Taylor
from prunestudy.methods.thinet import ThiNet

METHODS: dict[str, type[Method]] = {
    m.name: m for m in (Fisher, Taylor, Slimming, L1Norm, Magnitude, SSS, ThiNet, Regression)
}

__all__ = ["METHODS", "Method", "TrainHooks", "method"]


def method(name: str) -> type[Method]:
    if name not in METHODS:
        raise ValueError(f"unknown pruning method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name]
