"""The public API is deliberate: ``__all__`` is sorted and is exactly what the root exports."""

from __future__ import annotations

import qstash_emulator


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(qstash_emulator) if not name.startswith("_")}
    exported = set(qstash_emulator.__all__) - {"__version__"}
    assert qstash_emulator.__all__ == sorted(qstash_emulator.__all__, key=str.casefold) or (
        qstash_emulator.__all__ == sorted(qstash_emulator.__all__)
    )
    # subpackages and the testing module import as attributes
    assert public - exported <= {"api", "contracts", "dashboard", "testing", "workflows"}
    assert exported <= public
