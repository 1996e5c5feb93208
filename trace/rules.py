"""The configurable rules of the domain, passed in by whoever calls it.

The domain reads no settings of its own: the API, the CLI and the simulators build
`TraceRules.from_settings(settings)` and hand it to processing and plausibility. The
defaults are the physical ones of DOMAIN.md (the same as the settings' defaults), for
callers such as tests that do not configure them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from coffeetrace.settings import (
    DEFAULT_KIND_MAX_YIELD_FROM_CHERRY,
    DEFAULT_STEP_CLOCK_SKEW_S,
    DEFAULT_STEP_MAX_YIELD,
    DEFAULT_TREE_YIELD_FLAG_FACTOR,
    DEFAULT_TYPICAL_TREE_CHERRY_KG,
    Settings,
)


@dataclass(frozen=True)
class TraceRules:
    # most output kg per input kg of each processing step
    step_max_yield: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_STEP_MAX_YIELD)
    )
    # most kg of a lot of each kind per kg of fresh cherry behind it, all steps together
    kind_max_yield_from_cherry: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_KIND_MAX_YIELD_FROM_CHERRY)
    )
    # plausibility: a tree's season total above this many typical yields is flagged
    tree_yield_flag_factor: float = DEFAULT_TREE_YIELD_FLAG_FACTOR
    typical_tree_cherry_kg: float = DEFAULT_TYPICAL_TREE_CHERRY_KG
    # processing: how far in the future a step's occurred_at may be
    step_clock_skew_s: float = DEFAULT_STEP_CLOCK_SKEW_S

    @classmethod
    def from_settings(cls, settings: Settings) -> TraceRules:
        return cls(
            step_max_yield=dict(settings.step_max_yield),
            kind_max_yield_from_cherry=dict(settings.kind_max_yield_from_cherry),
            tree_yield_flag_factor=settings.tree_yield_flag_factor,
            typical_tree_cherry_kg=settings.typical_tree_cherry_kg,
            step_clock_skew_s=settings.step_clock_skew_s,
        )


DEFAULT_RULES = TraceRules()
