"""The generator sensitivity study (issue 47): where a claim holds across habitat strengths, said in words computed
from its verdicts; and the study's data made inside bgrepro's results folder at each strength."""

from __future__ import annotations

from bgrepro.book import sensitivity
from bgrepro.book import verdicts as v


def _verdicts(by_strength: dict[float, str]) -> dict[float, dict[str, v.Verdict]]:
    return {r: {"2": v.Verdict("2", "m", "o", "p", verdict, "r")} for r, verdict in by_strength.items()}


def test_where_a_claim_holds_is_said_from_its_verdicts():
    every = sensitivity.sentence("2", _verdicts({0.2: v.REPRODUCED, 0.5: v.REPRODUCED, 0.8: v.REPRODUCED}))
    assert "holds at every habitat strength tested (0.2, 0.5, 0.8)" in every
    above = sensitivity.sentence("2", _verdicts({0.2: v.NOT_SHOWN, 0.5: v.REPRODUCED, 0.8: v.REPRODUCED}))
    assert "holds only from R = 0.5 up" in above and "R = 0.2: not shown" in above
    nowhere = sensitivity.sentence("2", _verdicts({0.2: v.NOT_SHOWN, 0.5: v.CONTRADICTS, 0.8: v.INCONCLUSIVE}))
    assert "holds at no habitat strength tested" in nowhere and "R = 0.5: contradicts the paper" in nowhere
    top = sensitivity.sentence("2", _verdicts({0.2: v.NOT_REPRODUCED, 0.5: v.PARTLY, 0.8: v.REPRODUCED}))
    assert "holds only at the strongest habitat tested (R = 0.8)" in top
    odd = sensitivity.sentence("2", _verdicts({0.2: v.REPRODUCED, 0.5: v.NOT_SHOWN, 0.8: v.REPRODUCED}))
    assert "not in order of strength" in odd


def test_each_strength_has_its_own_data_inside_the_results_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BGREPRO_RESULTS", str(tmp_path / "results"))
    plan = sensitivity.Plan.of("smoke")
    assert 0.8 in plan.strengths and min(plan.strengths) <= 0.4 and len(plan.strengths) >= 3
    folders = sensitivity.data_folders("smoke")
    assert len(set(folders)) == 2 * len(plan.strengths)  # the synthetic set and its variants at each strength
    assert all(f.startswith(str(tmp_path / "results")) for f in folders)
