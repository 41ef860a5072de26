"""Liu et al.'s lottery-ticket comparison: the ticket's weights, the large network's initial weights, the arms'
plans, the runs table's learning rates and one claim per learning rate."""

import pandas as pd
import pytest
import torch

from prunestudy.analysis.claims import applicable, claims_table, comparisons
from prunestudy.analysis.collect import compared, run_row
from prunestudy.analysis.stats import is_paired, units_table
from prunestudy.arch import resnet, vgg
from prunestudy.io.paths import at_lr, split_lr
from prunestudy.jobs.train import save_initial_weights
from prunestudy.methods.l1norm import L1Norm, L1Params
from prunestudy.methods.magnitude import Magnitude, MagnitudeParams
from prunestudy.methods.slimming import Slimming, SlimmingParams
from prunestudy.pruning.arms import RANDOM_INIT, WINNING_TICKET, in_order, plan, trained_arms
from prunestudy.pruning.oneshot import prune_once, winning_ticket
from prunestudy.training.loop import derive_seed, fit
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime

VGG = vgg(cfg=(8, 8, "M", 16, "M", 16, 24), in_channels=1, image_size=8)
RESNET = resnet(8, width=0.5, in_channels=1, image_size=8)


def _init_and_trained(spec, seed=0):
    """An initial state and a 'trained' one that is the initial state doubled: surgery only indexes, so every
    kept weight of the pruned trained network is twice the ticket's, wherever the pruning cut."""
    torch.manual_seed(seed)
    init = spec.build().state_dict()
    gen = torch.Generator().manual_seed(seed + 1)
    for t in init.values():  # distinct magnitudes, so that no tie decides what is kept
        if t.is_floating_point():
            t.add_(0.01 * torch.rand(t.shape, generator=gen))
    return init, {k: 2 * v if v.is_floating_point() else v for k, v in init.items()}


@pytest.mark.parametrize(
    ("spec", "method", "target", "params"),
    [
        (VGG, Slimming, 0.4, SlimmingParams()),
        (RESNET, L1Norm, "A", L1Params(settings={"A": {"ratios": [0.5, 0.5, 0.3], "skip": []}})),
    ],
)
def test_a_structured_ticket_keeps_the_initial_weights_of_the_channels_pruning_kept(spec, method, target, params):
    init, trained = _init_and_trained(spec)
    pruned = prune_once(trained, spec, method, target, params)
    removals = pruned.record["removals"]
    assert sum(map(len, removals.values())) == sum(pruned.record["removed"].values()) > 0
    ticket = winning_ticket(init, spec, pruned.spec, method, removals)
    model = pruned.spec.build()
    model.load_state_dict(ticket)  # the pruned architecture's shapes
    for name, t in dict(model.named_parameters()).items():
        assert torch.equal(2 * t.detach(), pruned.state[name]), name


def test_a_ticket_from_removals_of_another_pruning_is_refused():
    init, trained = _init_and_trained(VGG)
    a = prune_once(trained, VGG, Slimming, 0.4, SlimmingParams())
    b = prune_once(trained, VGG, Slimming, 0.2, SlimmingParams())
    with pytest.raises(ValueError, match="recorded removals"):
        winning_ticket(init, VGG, a.spec, Slimming, b.record["removals"])


def test_an_unstructured_ticket_is_the_initial_weights_under_the_mask():
    init, trained = _init_and_trained(RESNET)
    pruned = prune_once(trained, RESNET, Magnitude, 0.5, MagnitudeParams())
    ticket = winning_ticket(init, RESNET, pruned.spec, Magnitude, mask=pruned.mask)
    for name, m in pruned.mask.items():
        kept = m.bool()
        assert torch.equal(ticket[name][kept], init[name][kept]) and not ticket[name][~kept].any()
    assert all(torch.equal(ticket[n], init[n]) for n in init if n not in pruned.mask)


def test_the_saved_initial_weights_are_the_ones_training_starts_from(tmp_path, digits):
    spec = VGG
    run_seed = derive_seed(7, "base", spec.spec_id)
    save_initial_weights(tmp_path / "init.pt", spec, run_seed, {"experiment": "t"})
    started = {}
    fit(
        spec,
        digits,
        Recipe(epochs=1, batch_size=256, lr=0.01),
        seed=run_seed,
        rt=Runtime.pick("cpu"),
        init=lambda m: started.update({k: v.clone() for k, v in m.state_dict().items()}),
    )
    saved = torch.load(tmp_path / "init.pt", weights_only=False)
    assert saved["identity"] == {"experiment": "t"}
    assert started.keys() == saved["state"].keys()
    assert all(torch.equal(started[k], saved["state"][k]) for k in started)


def test_lottery_arms_train_the_pruned_network_for_scratch_e_epochs_at_their_learning_rate():
    base, arch = VGG, VGG.with_widths([4] * len(VGG.widths_vector))
    recipe = Recipe(epochs=10, batch_size=16, lr=0.1, milestones=(5,))
    for arm in (WINNING_TICKET, RANDOM_INIT):
        p = plan(arm, base, recipe, arch=arch, scratch_epochs=12, lr=0.01)
        assert (p.spec, p.recipe.epochs, p.recipe.lr, p.extra["lr"]) == (arch, 12, 0.01, 0.01)
        with pytest.raises(ValueError, match="learning rate"):
            plan(arm, base, recipe, arch=arch)


def test_slots_and_labels_carry_the_learning_rate():
    assert at_lr("0.5", 0.01) == "0.5@lr0.01" and split_lr("0.5@lr0.01") == ("0.5", 0.01)
    assert split_lr("A") == ("A", None)
    e = {"guided": False, "guided_layer": False, "long_base": False, "lottery": {"lrs": [0.1, 0.01]}}
    e["families"] = {"width": [], "bottleneck": [], "scaled": {"targets": []}}
    assert {"winning-ticket@lr0.1", "random-init@lr0.01"} <= trained_arms(e)
    # tables and figures put each winning ticket beside its random initialisation, the larger rate first
    names = ["random-init@lr0.01", "winning-ticket@lr0.01", "random-init@lr0.1", "pruned", "winning-ticket@lr0.1"]
    assert in_order([*names, "pruned"]) == [
        "pruned",
        "winning-ticket@lr0.1",
        "random-init@lr0.1",
        "winning-ticket@lr0.01",
        "random-init@lr0.01",
    ]


def _record(arm, seed, slot, error):
    return {
        "arm": arm,
        "seed": seed,
        "identity": {"slot": slot},
        "extra": {},
        "versions": {},
        "spec_id": "s",
        **dict.fromkeys(("params", "flops", "macs", "epochs", "wall_time_s", "throughput_img_s"), 1),
        "val_error": error,
        "test_error": error,
        "final_train_loss": 0.1,
        "device": "cpu",
        "config_hash": "h",
    }


def _lottery_runs(gap_01: float, gap_001: float, seeds=range(1, 6)) -> pd.DataFrame:
    """Winning ticket and random init at two learning rates; the ticket ``gap`` worse (negative: better)."""
    rows = []
    for s in seeds:
        noise = 0.001 * (s % 3)
        for lr, gap in ((0.1, gap_01), (0.01, gap_001)):
            rows.append(run_row(_record(RANDOM_INIT, s, at_lr("0.5", lr), 0.10 + noise), "p", "e"))
            rows.append(run_row(_record(WINNING_TICKET, s, at_lr("0.5", lr), 0.10 + noise + gap), "p", "e"))
    return pd.DataFrame(rows)


def test_each_learning_rate_is_its_own_paired_claim_and_can_go_either_way():
    runs = _lottery_runs(gap_01=0.0, gap_001=-0.03)  # the ticket helps only at 0.01, as Liu et al. found
    assert runs["target"].eq(0.5).all() and sorted(runs["lr"].unique()) == [0.01, 0.1]
    frame = compared(runs)
    pairs = comparisons(frame["arm"])
    lottery = {("winning-ticket@lr0.1", "random-init@lr0.1"), ("winning-ticket@lr0.01", "random-init@lr0.01")}
    assert lottery <= set(pairs)
    units = units_table(frame, pairs, grid_points=3)
    assert units["paired"].all() and is_paired("winning-ticket@lr0.1", "random-init@lr0.1")
    trained = {"base", "pruned", "scratch-E", "scratch-B", *frame["arm"]}
    lottery = [c for c in applicable(trained) if c.id.startswith("liu-lottery")]
    assert [c.id for c in lottery] == ["liu-lottery@lr0.1", "liu-lottery@lr0.01"]
    only = units[units["worse"].str.startswith("winning")]
    table = claims_table({"e": (set(frame["arm"]), only)}, alpha=0.05, margin=0.005, resolution=1e-4)
    verdicts = dict(zip(table["claim"], table["verdict"], strict=True))
    assert verdicts == {"liu-lottery@lr0.1": "supported", "liu-lottery@lr0.01": "contradicted"}
