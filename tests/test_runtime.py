"""The embedded runtime: Ascent's API shape, actions, python extracts, triggers, queries, bad input."""

import numpy as np
import pytest
import yaml

import insitu.runtime.embedded as runtime_mod
from support.ascent_harness import AscentLikeRuntime
from insitu.blueprint import uniform_domain
from insitu.runtime import Runtime, RuntimeActionError, connect


@pytest.fixture(autouse=True)
def fresh_process_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Ascent reads ./ascent_actions.yaml etc.: keep tests in an empty folder
    runtime_mod.reset_process_state()
    yield
    runtime_mod.reset_process_state()


def mesh(cycle, value=1.0):
    f = np.full((4, 4, 4), value, np.float32)
    f[1, 2, 3] = value + cycle
    return [uniform_domain(f, field="e", cycle=cycle, time=cycle * 0.5)]


def extract(src):
    return {"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source": src}}}}


def test_python_extract_sees_data_comm_and_keeps_state():
    rt = connect(prefer="embedded")
    src = ("from mpi4py import MPI\n"
           "comm = MPI.Comm.f2py(ascent_mpi_comm_id())\n"
           "seen = globals().setdefault('seen', [])\n"
           "seen.append((int(ascent_data()[0]['state']['cycle']), comm.Get_size()))\n")
    for c in range(3):
        rt.publish(mesh(c))
        rt.execute([extract(src)])
        assert rt.info()["status"]["message"] == "completed"
    assert runtime_mod._NAMESPACE["seen"] == [(0, 1), (1, 1), (2, 1)]
    import ascent_extract
    assert ascent_extract.ascent_data()[0]["state"]["cycle"] == 2


def test_trigger_fires_at_exactly_the_matching_cycles(tmp_path):
    (tmp_path / "trig.yaml").write_text(yaml.safe_dump([extract("fired = globals().setdefault('fired', []);"
                                                                " fired.append(int(ascent_data()[0]['state']['cycle']))")]))
    rt = connect(prefer="embedded")
    acts = [{"action": "add_triggers", "triggers": {
        "t1": {"params": {"condition": "cycle() % 4 == 1", "actions_file": "trig.yaml"}},
        "t2": {"params": {"condition": "max(field('e')).value > 7.5", "actions": [extract("pass")]}}}}]
    for c in range(10):
        rt.publish(mesh(c))
        rt.execute(acts)
    assert runtime_mod._NAMESPACE["fired"] == [1, 5, 9]
    assert [r["cycle"] for r in rt.info()["triggers"] if r["trigger"] == "t2"] == [7, 8, 9]


def test_queries_history_and_info():
    rt = connect(prefer="embedded")
    acts = [{"action": "add_queries", "queries": {
        "q1": {"params": {"expression": "max(field('e')).value", "name": "mx"}},
        "q2": {"params": {"expression": "mx - history(mx, relative_index=1)", "name": "growth"}}}},
        {"action": "add_triggers", "triggers": {"t": {"params": {"condition": "mx > 3 and growth > 0.5",
                                                                  "actions": [extract("pass")]}}}}]
    for c in range(5):
        rt.publish(mesh(c))
        rt.execute(acts)
    info = rt.info()
    assert info["expressions"]["mx"] == {"4": {"value": 5.0}}
    assert info["expressions"]["growth"] == {"4": {"value": 1.0}}
    assert [r["cycle"] for r in info["triggers"]] == [3, 4]
    # cycle 0 had no history yet: reported, later cycles fine
    assert info["status"]["message"] == "completed"


def test_unsupported_actions_are_reported_and_nothing_runs():
    """As in Ascent, a problem found while building the graph fails the whole execute, at every cycle."""
    rt = connect(prefer="embedded")
    for c in range(2):
        rt.publish(mesh(c))
        rt.execute([{"action": "add_pipelines", "pipelines": {}},
                    {"action": "add_extracts", "extracts": {"r": {"type": "relay", "params": {}}}},
                    extract("ran = True")])
        st = rt.info()["status"]
        assert st["message"] == "failed"
        assert any("add_pipelines" in e and "supports" in e for e in st["errors"])
        assert any("'relay'" in e and "['python']" in e for e in st["errors"])
        assert "ran" not in runtime_mod._NAMESPACE


def test_exception_in_extract_does_not_break_later_extracts():
    rt = connect(prefer="embedded")
    rt.publish(mesh(0))
    rt.execute([extract("raise RuntimeError('boom')")])
    err = rt.info()["status"]["errors"][0]
    assert err.startswith("extract 'x': RuntimeError: boom (line 1)")
    rt.execute([extract("after = 1")])
    assert rt.info()["status"]["message"] == "completed" and runtime_mod._NAMESPACE["after"] == 1


def test_exceptions_forward_raises():
    rt = Runtime()
    rt.open({"exceptions": "forward"})
    rt.publish(mesh(0))
    with pytest.raises(RuntimeActionError, match="boom"):
        rt.execute([extract("raise ValueError('boom')")])


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("-\n  action: add_extracts\n  extracts: [unclosed\n")
    rt = connect(prefer="embedded")
    rt.publish(mesh(0))
    rt.execute(str(p))
    err = rt.info()["status"]["errors"][0]
    assert "bad.yaml" in err and "line" in err


def test_trigger_syntax_error_shows_position():
    rt = connect(prefer="embedded")
    rt.publish(mesh(0))
    rt.execute([{"action": "add_triggers", "triggers": {"t": {"params": {"condition": "cycle( > 2",
                                                                          "actions": []}}}}])
    err = rt.info()["status"]["errors"][0]
    assert "position" in err and "^" in err


def test_extract_file_param_and_missing_file(tmp_path):
    (tmp_path / "script.py").write_text("from_file = int(ascent_data()[0]['state']['cycle'])\n")
    rt = connect(prefer="embedded")
    rt.publish(mesh(3))
    rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"file": "script.py"}}}}])
    assert runtime_mod._NAMESPACE["from_file"] == 3
    rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"file": "nope.py"}}}}])
    assert "cannot read python script file nope.py" in rt.info()["status"]["errors"][0]


def test_save_session_writes_history(tmp_path):
    rt = connect(prefer="embedded")
    for c in range(2):
        rt.publish(mesh(c))
        rt.execute([{"action": "add_queries", "queries": {"q": {"params": {"expression": "cycle()", "name": "c"}}}},
                    {"action": "save_session", "file_name": "sess"}])
    assert yaml.safe_load((tmp_path / "sess.yaml").read_text()) == {"c": {"0": {"value": 0}, "1": {"value": 1}}}


def test_connect_prefers_and_validates():
    with pytest.raises(ValueError, match="valid choices"):
        connect(prefer="paraview")
    try:
        import ascent  # noqa: F401
        has_ascent = True
    except Exception:
        has_ascent = False
    if not has_ascent:
        with pytest.raises(RuntimeError, match="Ascent cannot be used"):
            connect(prefer="ascent")
        assert isinstance(connect(prefer="auto"), Runtime)


def test_extract_sees_a_multi_domain_conduit_node():
    """ascent_data() is a multi-domain node with Conduit's API, even for one published domain (a dict)."""
    rt = connect(prefer="embedded")
    rt.publish(mesh(3)[0])  # one domain, not a list
    rt.execute([extract(
        "d = ascent_data()\n"
        "n = d.number_of_children()\n"
        "m = d.child(0)\n"
        "cyc = m['state/cycle']\n"
        "vals = m['fields/e/values']\n"
        "names = m.fetch_existing('fields').child_names()\n"
        "has = (m.has_path('fields/e/values'), m.has_path('fields/nope'))\n"
        "text = m.fetch_existing('state').to_yaml()\n"
        "import ascent_filters as af\n"
        "from insitu.blueprint import published_fields, blocks\n"
        "fields_seen = published_fields(d)\n"
        "block_shape = next(blocks(d, 'e')).values.shape\n")])
    assert rt.info()["status"]["message"] == "completed", rt.info()["status"]
    ns = runtime_mod._NAMESPACE
    assert ns["n"] == 1 and int(ns["cyc"]) == 3 and isinstance(ns["cyc"], np.integer)
    assert ns["vals"].shape == (64,) and ns["vals"].max() == 4.0
    assert ns["names"] == ["e"] and ns["has"] == (True, False) and "cycle: 3" in ns["text"]
    assert ns["fields_seen"] == ["e"] and ns["block_shape"] == (4, 4, 4)
    assert "conduit" not in ns or ns["conduit"].__name__ == "conduit"  # the real module, or left undefined


def test_ascent_like_harness_runs_the_same_extract():
    rt = AscentLikeRuntime()
    rt.open({})
    rt.publish(mesh(2))
    rt.execute([extract("d = ascent_data().child(0)\n"
                        "cyc = int(d['state/cycle'])\n"
                        "n = ascent_data().number_of_children()\n")])
    assert rt.info()["status"]["message"] == "completed"
    assert rt.namespace["cyc"] == 2 and rt.namespace["n"] == 1
