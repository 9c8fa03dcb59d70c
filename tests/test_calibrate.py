"""`cosmoskit calibrate`: the fit as tables, and on the CPU EMULATOR with known timing knobs."""
from __future__ import annotations

import re

import pytest
import yaml

from cosmoskit._core.calibrate import Sample, fit, predict

from conftest import configure
from conftest import ledger_batches as batches
from conftest import make_prompt as prompt

TRUE = {"load_base_seconds": 180.0, "load_per_control_seconds": 60.0, "chunk_seconds_per_step": 12.7,
        "chunk_control_factor": 0.35}
START = {"load_base_seconds": 100.0, "load_per_control_seconds": 10.0, "chunk_seconds_per_step": 5.0,
         "chunk_control_factor": 0.1}


def samples(params, shapes):
    out = []
    for k, (n, work) in enumerate(shapes):
        s = Sample(f"bt_{k}", n, work, 0.0)
        out.append(Sample(s.batch, n, work, predict(params, s)))
    return out


VARIED = [(1, 35), (2, 35), (3, 70), (1, 140), (2, 10), (4, 35)]


def test_exact_timings_give_back_the_parameters():
    got = fit(samples(TRUE, VARIED), START)
    assert got.free == list(TRUE) and not got.kept
    for key, value in TRUE.items():
        assert got.fitted[key] == pytest.approx(value, rel=1e-6)
    assert got.error == pytest.approx(0, abs=1e-9) and got.error_current > 0.3


def test_one_control_count_keeps_what_it_cannot_see_and_still_predicts_it():
    shapes = [(2, 35), (2, 70), (2, 10), (2, 140)]
    got = fit(samples(TRUE, shapes), START)
    assert set(got.kept) == {"load_per_control_seconds", "chunk_control_factor"}
    assert got.fitted["load_per_control_seconds"] == START["load_per_control_seconds"]
    for s in samples(TRUE, shapes):  # absorbed into the load and the per-step time
        assert predict(got.fitted, s) == pytest.approx(s.seconds)


def test_only_the_parameters_the_section_has_are_fitted():
    cosmos3 = {"load_base_seconds": 150.0, "chunk_seconds_per_step": 5.84}
    truth = {"load_base_seconds": 90.0, "chunk_seconds_per_step": 4.0}
    got = fit(samples(truth, [(1, 35), (1, 70), (1, 10)]), cosmos3)
    assert set(got.fitted) == set(cosmos3) and got.fitted["load_base_seconds"] == pytest.approx(90.0)


@pytest.mark.parametrize("shapes, message", [
    ([(1, 35), (2, 35), (3, 35)], "same amount of generation"),
    ([(1, 35), (2, 70)], "cannot fit 4 parameter"),
])
def test_what_cannot_be_fitted_is_said(shapes, message):
    with pytest.raises(ValueError, match=message):
        fit(samples(TRUE, shapes), START)


def test_parameters_never_come_out_negative():
    noisy = [Sample("a", 1, 10, 5.0), Sample("b", 1, 100, 4.0), Sample("c", 2, 50, 4.5), Sample("d", 3, 20, 9.0),
             Sample("e", 2, 10, 3.0)]
    got = fit(noisy, START)
    assert all(v >= 0 for v in got.fitted.values())


def test_the_emulator_with_known_knobs_is_recovered_within_ten_percent(project, cli, videos):
    """Six single-run batches of the EMULATOR, with 1-3 controls and 10 or 35 steps, three at a time.

    A batch's time also holds the emulator's own start-up and output writing (a real model pays its own
    too), which vary with the machine's load; the emulator marks where its simulated work begins and ends,
    so the check of the fit against the knobs uses each batch's simulated time, and the command's own fit
    (on the launcher's stamps, as a user gets it) is checked to explain the batches far better than the
    defaults did, and to be written where the planner reads it."""
    knobs = {"load_seconds": 6.0, "load_seconds_per_control": 2.0, "seconds_per_chunk": 3.5, "control_factor": 0.5}
    configure(project, emulator={"variation": False, **knobs}, executors={"local": {"type": "local", "gpus": 3}})
    pid = prompt(cli, "calibrate", videos["scene"])
    for weights in ("vis=1", "vis=1,edge=1", "vis=1,edge=1,depth=1"):
        result = cli("transfer", pid, "--weights", weights, "--num-steps", "10,35", "--yes", "--queue")
        assert result.exit_code == 0, result
    worked = cli("worker", "--once", "--strategy", "single")
    assert worked.exit_code == 0, worked
    simulated = {}
    for b in batches():
        log = (project / "batches" / b["id"] / "batch.log").read_text()
        begins = float(re.search(r"timing: simulated load begins at ([0-9.]+)", log).group(1))
        ends = float(re.search(r"timing: simulated generation ends at ([0-9.]+)", log).group(1))
        simulated[b["id"]] = ends - begins
    from cosmoskit._core import context
    from cosmoskit._core.calibrate import groups

    (group,) = groups(context.engine())
    assert len(group.samples) == 6
    clean = fit([Sample(s.batch, s.networks, s.work, simulated[s.batch]) for s in group.samples], group.fit.current)
    assert clean.fitted["load_base_seconds"] == pytest.approx(knobs["load_seconds"], rel=0.10)
    assert clean.fitted["load_per_control_seconds"] == pytest.approx(knobs["load_seconds_per_control"], rel=0.10)
    assert clean.fitted["chunk_seconds_per_step"] == pytest.approx(knobs["seconds_per_chunk"] / 35, rel=0.10)
    assert clean.fitted["chunk_control_factor"] == pytest.approx(knobs["control_factor"], rel=0.10)
    # the command, on the launcher's stamps
    out = cli("calibrate", "--json")
    assert out.exit_code == 0, out
    (entry,) = out.json()["fits"]
    assert entry["error"] < 0.25 < entry["error_current"], entry
    # --apply writes them where Transfer 1's cost model reads them, keeping the file's comments
    path = project / "cosmoskit.yaml"
    path.write_text("# my comment\n" + path.read_text())
    applied = cli("calibrate", "--apply")
    assert applied.exit_code == 0, applied
    text = path.read_text()
    assert text.startswith("# my comment")
    cost = yaml.safe_load(text)["batching"]["cost"]
    fitted = {p["name"]: p["fitted"] for p in entry["parameters"]}
    assert cost["chunk_seconds_per_step"] == pytest.approx(fitted["chunk_seconds_per_step"], rel=1e-3)
    assert cli("queue", "plan", "--json").exit_code == 0, "the file is still a valid configuration"
