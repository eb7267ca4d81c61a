"""How a test configures ``qstash``: command line, ``qstash_config``, parameters, marker.

Later sources win: command-line defaults, then the ``qstash_config`` fixture (override it in a
conftest.py), then ``indirect`` parametrization of ``qstash``, then ``@pytest.mark.qstash`` on
the module, class and test (closest last).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pytest

__all__ = ["CHECKS", "MARKER_HELP", "Check", "ClockMode", "Options", "resolve"]

# What the teardown looks at: messages left waiting, dead letters, scripted replies not used,
# workflow runs that did not end.
Check = Literal["pending", "dead_letters", "unused_responses", "runs"]
CHECKS: tuple[Check, ...] = get_args(Check)
# A virtual clock the test drives, or the wall clock.
ClockMode = Literal["virtual", "real"]
_CLOCKS: tuple[ClockMode, ...] = get_args(ClockMode)

MARKER_HELP = (
    "qstash(clock='virtual'|'real', auto_advance=True, checks=True, seed=None, "
    "intercept_production=False, network=False, timeout=10): configure the qstash fixture "
    "for a test "
    "(also injects the fixture, so the test's environment points at the emulator)"
)


@dataclass(frozen=True)
class Options:
    """The settings of one test's ``qstash`` fixture."""

    clock: ClockMode = "virtual"
    auto_advance: bool = True
    checks: bool | tuple[Check, ...] = True
    seed: int | str | None = None
    intercept_production: bool = False
    network: bool = False
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.clock not in _CLOCKS:
            raise ValueError(
                f"invalid clock {self.clock!r}: expected {' or '.join(map(repr, _CLOCKS))}"
            )
        if not isinstance(self.checks, bool):
            names = tuple(self.checks)
            unknown = sorted(set(names) - set(CHECKS))
            if unknown:
                raise ValueError(
                    f"invalid checks {', '.join(unknown)}: expected True, False or any of "
                    f"{', '.join(CHECKS)}"
                )
            object.__setattr__(self, "checks", names)
        if self.timeout <= 0:
            raise ValueError(f"invalid timeout {self.timeout!r}: expected seconds > 0")

    @property
    def virtual(self) -> bool:
        return self.clock == "virtual"

    def check(self, name: Check) -> bool:
        return self.checks if isinstance(self.checks, bool) else name in self.checks

    def merge(self, values: Mapping[str, Any], source: str) -> Options:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(
                f"{source}: unknown qstash option {', '.join(unknown)}; expected any of "
                f"{', '.join(sorted(names))}"
            )
        try:
            return dataclasses.replace(self, **values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from exc


def from_command_line(config: pytest.Config) -> Options:
    seed = config.getoption("qstash_seed")
    return Options(
        clock="real" if config.getoption("qstash_real_time") else "virtual",
        checks=not config.getoption("qstash_no_checks"),
        seed=int(seed) if seed is not None and seed.lstrip("-").isdigit() else seed,
    )


def resolve(request: pytest.FixtureRequest, config_values: Mapping[str, Any]) -> Options:
    try:
        return _resolve(request, config_values)
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)


def _resolve(request: pytest.FixtureRequest, config_values: Mapping[str, Any]) -> Options:
    options = from_command_line(request.config).merge(config_values, "qstash_config")
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, Mapping):
            raise ValueError(
                f"qstash parameter: expected a dict of options, got {type(param).__name__}"
            )
        options = options.merge(param, "qstash parameter")
    markers = list(request.node.iter_markers("qstash"))
    for marker in reversed(markers):  # farthest first, so the test's own marker wins
        if marker.args:
            raise ValueError(
                f"@pytest.mark.qstash takes keyword arguments only, got {marker.args!r}"
            )
        options = options.merge(marker.kwargs, "@pytest.mark.qstash")
    return options
