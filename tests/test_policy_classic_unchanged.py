"""The paper's five policies keep exactly the schedules they had before the placement hook.

The golden digests were recorded with the executor as it was before policies could defer
work (see tests/schedule_digest.py for why they survive changes after the horizon).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.schedule_digest import CASES, CLASSIC, case_taskset, digest

GOLDEN = json.loads((Path(__file__).parent / "golden" / "policy_schedules.json").read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_classic_policies_schedule_exactly_as_recorded(case):
    ts = case_taskset(case)
    assert {p: digest(ts, p) for p in CLASSIC} == GOLDEN[case]
