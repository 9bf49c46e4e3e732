"""The model confidence set: a clearly worse agent leaves, tied agents stay, as arch computes it."""

import numpy as np
import pytest
from arch.bootstrap import MCS

from analytics import mcs


def _losses(windows=40, seed=2):
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 3.0, windows)  # shared by all agents in a window
    return {
        "steady": (market + rng.normal(0.0, 0.5, windows)).tolist(),
        "twin": (market + rng.normal(0.0, 0.5, windows)).tolist(),  # the same skill as steady
        "reckless": (market + 4.0 + rng.normal(0.0, 0.5, windows)).tolist(),  # loses 4 % more per window
    }


def test_a_clearly_worse_agent_is_excluded_and_two_tied_agents_stay():
    result = mcs.model_confidence_set(_losses(), size=0.10, reps=1000, seed=7)
    assert set(result.members) == {"steady", "twin"}
    assert result.elimination_order[0] == "reckless"
    assert result.p_values["reckless"] <= 0.10
    assert min(result.p_values["steady"], result.p_values["twin"]) > 0.10
    assert max(result.p_values.values()) == 1.0  # the last survivor
    assert (result.method, result.block_size, result.reps, result.seed, result.windows) == ("R", 1, 1000, 7, 40)


def test_p_values_and_order_are_arch_mcs_method_r_for_the_same_seed():
    losses = _losses(seed=5)
    result = mcs.model_confidence_set(losses, size=0.10, reps=500, block_size=3, seed=21)
    reference = MCS(np.column_stack(list(losses.values())), size=0.10, reps=500, block_size=3, method="R", seed=21)
    reference.compute()
    names = list(losses)
    expected = {names[int(index)]: float(p) for index, p in reference.pvalues["Pvalue"].items()}
    assert result.p_values == expected
    assert result.elimination_order == tuple(names[int(index)] for index in reference.pvalues.index)
    assert set(result.members) == {names[int(index)] for index in reference.included}


def test_the_same_seed_gives_the_same_set():
    first = mcs.model_confidence_set(_losses(), reps=300, seed=4)
    assert first == mcs.model_confidence_set(_losses(), reps=300, seed=4)


def test_agents_with_identical_losses_are_tested_as_one_and_share_their_fate():
    losses = _losses()
    losses["copy"] = list(losses["reckless"])
    result = mcs.model_confidence_set(losses, reps=500, seed=1)
    assert "reckless" not in result.members and "copy" not in result.members
    assert result.p_values["copy"] == result.p_values["reckless"]
    assert "identical" in result.note


def test_all_agents_identical_are_all_in_the_set():
    same = [1.0, -2.0, 0.5]
    result = mcs.model_confidence_set({"a": same, "b": list(same)})
    assert result.members == ("a", "b")
    assert result.p_values == {"a": 1.0, "b": 1.0}


def test_a_constant_difference_cannot_be_standardised_and_says_so():
    base = [1.0, -2.0, 0.5, 3.0]
    result = mcs.model_confidence_set({"a": base, "b": [value + 1 for value in base]})
    assert result.members == ()
    assert "constant" in result.note


@pytest.mark.parametrize(
    ("losses", "note"),
    [({"a": [1.0], "b": [2.0]}, "fewer than 2"), ({}, "no agents"), ({"a": [], "b": []}, "fewer than 2")],
)
def test_too_little_data_gives_no_set_and_a_reason(losses, note):
    result = mcs.model_confidence_set(losses)
    assert result.members == ()
    assert note in result.note


def test_a_single_agent_is_its_own_set():
    result = mcs.model_confidence_set({"solo": [1.0, 2.0, -1.0]})
    assert result.members == ("solo",)


def test_an_unbalanced_panel_is_a_caller_error():
    with pytest.raises(ValueError):
        mcs.model_confidence_set({"a": [1.0, 2.0], "b": [1.0]})
