"""Every real-world Ascent actions file either works in the embedded runtime or is rejected clearly."""
import shutil

import numpy as np

import insitu.runtime.embedded as runtime_mod
from insitu.blueprint import uniform_domain
from insitu.runtime import connect

FIELDS_VERTEX = ["braid", "energy", "pressure", "density", "e", "p", "gyre", "velocity_x", "radial_vert",
                 "nodal_noise"]


def braid_like(cycle=100):
    """An 8x8x8 mesh with the fields the files use (like Ascent's braid example, published under many names)."""
    z, y, x = np.meshgrid(*[np.linspace(-10, 10, 8)] * 3, indexing="ij")
    braid = (np.sin(x / 3) * np.cos(y / 4) + z / 10).astype(np.float32)
    extra = {name: braid * (i + 1) for i, name in enumerate(FIELDS_VERTEX[1:])}
    dom = uniform_domain(braid, field="braid", origin=(-10, -10, -10), spacing=(20 / 7,) * 3, cycle=cycle,
                         time=1.0, extra_fields=extra)
    dom["fields"]["zonal_noise"] = {"association": "element", "topology": "topo",
                                    "values": np.random.default_rng(0).random(7 ** 3).astype(np.float32)}
    return [dom]


# What a clear rejection names: an unsupported action/type/function, or a missing file.
CLEAR = ("unsupported", "unknown function", "not supported", "cannot read", "No such file", "unknown field",
         "has no", "index out of range", "must be a string", "needs", "takes exactly one")


def actions_files(shared):
    folder = shared / "ascent_actions"
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".json"))


def test_every_shared_actions_file(shared_dir, tmp_path, monkeypatch, capsys):
    work = tmp_path / "actions"
    shutil.copytree(shared_dir / "ascent_actions", work)
    monkeypatch.chdir(work)
    outcomes = {}
    for path in actions_files(shared_dir):
        runtime_mod.reset_process_state()
        rt = connect(prefer="embedded")
        for cycle in (100, 101):  # a later cycle still runs after whatever happened
            rt.publish(braid_like(cycle))
            rt.execute(str(path))
        rt.execute([{"action": "add_extracts",
                     "extracts": {"x": {"type": "python", "params": {"source": "alive = True"}}}}])
        assert runtime_mod._NAMESPACE.get("alive") is True, path.name
        rt.publish(braid_like(102))
        rt.execute(str(path))
        st = rt.info()["status"]
        errors = st.get("errors", []) + [e for t in rt.info()["triggers"] for e in t["errors"]]
        for e in errors:
            assert any(word in e for word in CLEAR), f"{path.name}: unclear error: {e}"
        outcomes[path.name] = (st["message"], errors[:1])
        rt.close()
    worked = sorted(n for n, (m, _) in outcomes.items() if m == "completed")
    with capsys.disabled():
        print(f"\n{len(worked)}/{len(outcomes)} shared actions files complete in the embedded runtime")
        for n, (m, errs) in sorted(outcomes.items()):
            if m != "completed":
                print(f"  rejected {n}: {errs[0].splitlines()[0] if errs else ''}")
    assert len(outcomes) >= 30
    # the expression/trigger/query files that real Ascent completes must complete here too
    for name in ("docs_tout_cycle_query100.yaml", "docs_tout_max_query100.yaml", "docs_rst_Triggers_L89.yaml",
                 "docs_rst_ExpressionsOverview_L63.yaml", "docs_tout_save_session100.yaml",
                 "docs_rst_ExpressionsOverview_L538.yaml", "tutorial_intro_trigger_example1_actions.yaml"):
        assert outcomes[name][0] == "completed", (name, outcomes[name])
