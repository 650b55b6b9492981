"""Settings declared once: a dataclass field that states its type, default, check, help and how it is shown.

A setting is a field of a frozen dataclass made with :func:`setting`; the field's
metadata is its declaration. :func:`check_fields` checks every declared value (one
:class:`ConfigError` naming the first bad field). The training settings are
:class:`~mnist_common.TrainConfig`'s fields; the harness adds its own in a subclass
(``harness.settings.Settings``) and derives from the declarations its command line,
its presets table and the settings part of each run record, so that adding a
hyperparameter is adding one field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from mnist_common.errors import UserError


class ConfigError(UserError, ValueError):
    """A setting out of range: ``field`` names it, ``problem`` says what is wrong (one line)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


@dataclasses.dataclass(frozen=True)
class Check:
    """A rule a value must follow: ``ok(value)``, else ``problem`` with ``{value}`` in it."""

    ok: Callable[[Any], bool]
    problem: str

    def __call__(self, field: str, value) -> None:
        if not self.ok(value):
            raise ConfigError(field, self.problem.format(value=value, value_repr=repr(value)))


def at_least(n: int) -> Check:
    return Check(lambda v: v >= n, f"must be at least {n}, got {{value}}")


def in_range(low: float, high: float, *, high_included: bool = False) -> Check:
    close = "]" if high_included else ")"
    return Check(lambda v: low <= v <= high if high_included else low <= v < high,
                 f"must be in [{low}, {high}{close}, got {{value}}")


FINITE = Check(lambda v: math.isfinite(v), "must be a finite number, got {value}")
POSITIVE = Check(lambda v: v > 0, "must be positive, got {value}")
NON_NEGATIVE = Check(lambda v: v >= 0, "must be >= 0, got {value}")


def one_of(choices: Sequence[str]) -> Check:
    return Check(lambda v: v in choices, f"{{value_repr}} is unknown (choose from {', '.join(map(str, choices))})")


#: How a run record holds a setting: its value (``"value"``), the value only for one framework or optimizer
#: (``"jax"``, ``"torch"``, ``"sgd"``; None otherwise), or not as a setting (``None``: a count or a
#: derived value the record takes from where it is measured).
RECORD_RULES = ("value", "jax", "torch", "sgd", None)


def setting(default, help: str, *, check: Check | Sequence[Check] = (), choices: Sequence[str] | None = None,
            flag: bool = True, from_preset: bool = True, default_text: str | None = None, modes: bool = False,
            applies: str | None = None, record: str | None = "value", metavar: str | None = None,
            shown: str | Callable[[Any], str] | None = None) -> Any:
    """A dataclass field declared as a setting (use as ``name: type = setting(...)``).

    ``help``: what it is, as ``--help`` says it. ``check`` (and ``choices``, a
    :func:`one_of` check that also names the choices in ``--help``): the rules a value
    must follow; None always passes a check (None means "the default", "all", "none").
    ``flag``: the command line has ``--name`` for it; ``from_preset``: its default
    there is the preset's (else ``default_text``, or the default itself, says what
    it is); ``modes``: the flag takes a comma-separated list, each value a run of its own. ``applies``: a capability the model must have for the
    setting to mean anything (``harness.registry.ModelSpec``'s: ``convnet``...).
    ``record``: one of :data:`RECORD_RULES`. ``shown``: how the presets table
    writes a value other than the default (a format such as ``"{} px"``, or a
    function of the value; None: not shown).
    """
    checks = (check,) if isinstance(check, Check) else tuple(check)
    if choices is not None:
        checks += (one_of(tuple(choices)),)
    if record not in RECORD_RULES:
        raise ValueError(f"record must be one of {RECORD_RULES}, got {record!r}")
    meta = {"help": help, "checks": checks, "choices": tuple(choices) if choices is not None else None,
            "flag": flag, "from_preset": from_preset, "default_text": default_text, "modes": modes,
            "applies": applies, "record": record, "metavar": metavar,
            "shown": shown.format if isinstance(shown, str) else shown}
    return dataclasses.field(default=default, metadata={"setting": meta})


def declared(cls_or_obj) -> list[tuple[dataclasses.Field, dict]]:
    """The fields of a dataclass that are settings, with their declarations, in field order."""
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(cls_or_obj) if "setting" in f.metadata]


def check_fields(obj) -> None:
    """ConfigError for the first declared field of ``obj`` whose value breaks one of its checks."""
    for field, meta in declared(obj):
        value = getattr(obj, field.name)
        if value is None:
            continue
        for check in meta["checks"]:
            check(field.name, value)
