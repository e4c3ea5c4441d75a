"""The embedded runtime runs an execute the way Ascent 0.9.3 does (shared/ascent_python_extract.md, "Execution
semantics"): validation first, flow-graph order, the first failure ends the execute, the identical-actions trap.

Actions are real YAML/JSON files written to the test's folder, run through the embedded runtime.
"""
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

import insitu.runtime.embedded as runtime_mod
from insitu.blueprint import uniform_domain
from insitu.runtime import connect
from insitu.runtime.actions import conduit_scalar, load_actions_file
from insitu.runtime.embedded import _Filter, flow_order
from support.mpi import ROOT, run_mpi


@pytest.fixture(autouse=True)
def fresh_process_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    yield
    runtime_mod.reset_process_state()


def mesh(cycle, peak=10.0):
    f = np.ones((4, 4, 4), np.float32)
    f[1, 2, 3] = peak
    return [uniform_domain(f, field="e", cycle=cycle, time=cycle * 0.5)]


def write(name, text):
    p = Path(name)
    p.write_text(textwrap.dedent(text))
    return str(p)


def run(actions, cycles=range(3), rt=None, peaks=None):
    """Execute ``actions`` at each cycle; the statuses seen."""
    rt = rt or connect(prefer="embedded")
    seen = []
    for i, c in enumerate(cycles):
        rt.publish(mesh(c, peaks[i] if peaks else 10.0))
        rt.execute(actions)
        seen.append(dict(rt.info()["status"]))
    return rt, seen


def record(name):
    """Python extract source appending ``name`` to a list in the extract namespace (the order filters ran)."""
    return f"globals().setdefault('ran', []).append('{name}')"


# ---------------------------------------------------------------- 1. validation before running
def test_query_without_name_fails_every_cycle_and_nothing_runs(capsys):
    path = write("a.yaml", f"""
        - action: add_extracts
          extracts:
            aa_first: {{type: python, params: {{source: "{record('aa_first')}"}}}}
        - action: add_queries
          queries:
            peak:
              params: {{expression: "max(field('e')).value"}}
        """)
    _, seen = run(path)
    assert [s["message"] for s in seen] == ["failed"] * 3  # a build failure: every cycle, never the trap
    assert "ran" not in runtime_mod._NAMESPACE  # nothing of that execute ran, not even the extract
    err = seen[0]["errors"]
    assert len(err) == 1 and "query 'peak'" in err[0] and "add params/name" in err[0] and "\n" not in err[0]
    assert "verify_params failed" in err[0]
    # printed in full at the first cycle, then counted (the second time says so), every cycle in info()
    assert capsys.readouterr().err.count("add params/name") == 2


def test_yaml_numbers_are_typed_as_conduit_types_them():
    assert conduit_scalar("1e300") == 1e300 and conduit_scalar(" 42") == 42 and conduit_scalar("0x10") == 16.0
    assert conduit_scalar("inf") == float("inf") and conduit_scalar("") is None
    for text in ("true", "null", "1e300 ", "max(field('e'))", "1_000", "1d_binning", "٣"):
        assert conduit_scalar(text) == text
    write("q.yaml", """
        - action: add_queries
          queries:
            q: {params: {expression: "1e300", name: "2", extra: ["1", 2.5, "x"]}}
        """)
    q = load_actions_file("q.yaml")[0]["queries"]["q"]["params"]
    assert q == {"expression": 1e300, "name": 2, "extra": [1, 2.5, "x"]}


def test_quoted_number_expression_fails_in_yaml_but_not_in_json():
    acts = [{"action": "add_queries", "queries": {"q2": {"params": {"expression": "1e300", "name": "crazy"}}}}]
    yml = write("q.yaml", yaml.safe_dump(acts))
    _, seen = run(yml, cycles=[0])
    assert seen[0]["message"] == "failed"
    assert "query 'q2': params/expression is the number 1e+300, not a string" in seen[0]["errors"][0]
    Path("q.json").write_text(json.dumps(acts))
    rt, seen = run("q.json", cycles=[0])
    assert seen[0]["message"] == "completed" and rt.info()["expressions"]["crazy"]["0"]["value"] == 1e300


# ---------------------------------------------------------------- 2. flow-graph order = names
def test_filters_run_in_name_order_not_list_order():
    """As seen in Ascent: trigger 't' ran before extract 'x', 'z_trig' after it."""
    fire = lambda n: {"condition": "cycle() >= 0", "actions": [  # noqa: E731
        {"action": "add_extracts", "extracts": {"r": {"type": "python", "params": {"source": record(n)}}}}]}
    path = write("o.yaml", yaml.safe_dump([
        {"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source": record("x")}}}},
        {"action": "add_triggers", "triggers": {"z_trig": {"params": fire("z_trig")}, "t": {"params": fire("t")}}},
    ]))
    _, seen = run(path, cycles=[0])
    assert seen[0]["message"] == "completed"
    assert runtime_mod._NAMESPACE["ran"] == ["t", "x", "z_trig"]


def test_flow_order_places_query_chains_like_ascent():
    q = lambda k, chain: _Filter("query", k, (k, "1"), chain)  # noqa: E731
    chain_a = [q("zz", 0), q("b", 0)]  # one add_queries action: in its order, at the name of its last query 'b'
    chain_b = [q("a", 1)]  # the last add_queries action: at 'default_filters_endpoint'
    others = [_Filter("trigger", "c", {}), _Filter("extract", "aa", ""), _Filter("scene", "s", None),
              _Filter("trigger", "e", {})]
    order, sinks = flow_order([chain_a, chain_b], others)
    assert [f.key for f in order] == ["aa", "zz", "b", "c", "a", "e", "s"]  # 'e' < 'exec_s'
    assert sinks[id(order[4])] == "default_filters_endpoint" and sinks[id(order[6])] == "exec_s"


CAUGHT = """
    - action: add_queries
      queries:
        peak:
          params: {name: peak, expression: "max(field('e')).value"}
    - action: add_triggers
      triggers:
        %s:
          params:
            condition: "peak > 5"
            actions:
              - action: add_extracts
                extracts:
                  r: {type: python, params: {source: "%s"}}
    """


def test_trigger_using_a_query_that_runs_after_it(capsys):
    path = write("c.yaml", CAUGHT % ("cooled", record("fired")))
    rt, seen = run(path)
    err = capsys.readouterr().err
    warning = ("trigger 'cooled' runs before query 'peak' (Ascent orders filters by name, and runs the queries of "
               "the last add_queries action at the place of its filter 'default_filters_endpoint'): rename trigger "
               "'cooled' so that it sorts after 'default_filters_endpoint', e.g. 't_cooled'")
    assert err.count(warning) == 3  # once per execute
    assert seen[0]["message"] == "failed" and seen[0]["warnings"] and warning in seen[0]["warnings"][0]
    assert "Unknown expression identifier: 'peak'" in seen[0]["errors"][0]
    assert "runs after trigger 'cooled'" in seen[0]["errors"][0]
    assert [s["message"] for s in seen[1:]] == ["completed", "completed"] and seen[1]["did_nothing"]
    assert "ran" not in runtime_mod._NAMESPACE and "peak" not in rt.info()["expressions"]
    # the suggested name works
    runtime_mod.reset_process_state()
    capsys.readouterr()
    path = write("c2.yaml", CAUGHT % ("t_cooled", record("fired")))
    rt, seen = run(path)
    assert [s["message"] for s in seen] == ["completed"] * 3 and not seen[0]["warnings"]
    assert runtime_mod._NAMESPACE["ran"] == ["fired"] * 3 and "warning" not in capsys.readouterr().err


def test_queries_of_one_action_run_in_their_order():
    path = write("q.yaml", """
        - action: add_queries
          queries:
            zz: {params: {name: base, expression: "cycle() + 1"}}
            aa: {params: {name: derived, expression: "base * 10"}}
        """)
    rt, seen = run(path)
    assert [s["message"] for s in seen] == ["completed"] * 3 and not seen[0]["warnings"]
    assert rt.info()["expressions"]["derived"] == {"2": {"value": 30}}
    # listed the other way round: reported, with the fix
    path = write("q2.yaml", """
        - action: add_queries
          queries:
            aa: {params: {name: derived, expression: "base * 10"}}
            zz: {params: {name: base, expression: "cycle() + 1"}}
        """)
    runtime_mod.reset_process_state()
    _, seen = run(path, cycles=[0])
    assert "query 'aa' (name 'derived') runs before query 'zz' (name 'base')" in seen[0]["warnings"][0]
    assert "list query 'zz' before query 'aa'" in seen[0]["warnings"][0]


# ---------------------------------------------------------------- 3. a failure ends the execute; the trap
def test_failing_filter_ends_the_execute_then_identical_actions_do_nothing(capsys):
    path = write("f.yaml", f"""
        - action: add_extracts
          extracts:
            b_after: {{type: python, params: {{source: "{record('b_after')}"}}}}
            a_fails: {{type: python, params: {{source: "{record('a_fails')}; raise ValueError('boom')"}}}}
        """)
    rt, seen = run(path)
    assert runtime_mod._NAMESPACE["ran"] == ["a_fails"]  # once: 'b_after' never, later cycles nothing
    assert seen[0]["message"] == "failed"
    assert seen[0]["errors"][0].startswith("extract 'a_fails': ValueError: boom (line 1); not run after it "
                                           "(Ascent ends the execute at the first failing filter): extract 'b_after'")
    for s in seen[1:]:
        assert s["message"] == "completed" and s["errors"] == [] and "did nothing" in s["did_nothing"]
        assert "fix the failing filter" in s["did_nothing"] and "change the actions" in s["did_nothing"]
    assert capsys.readouterr().err.count("execute did nothing") == 2
    # any change rebuilds and runs
    rt.execute([{"action": "add_extracts", "extracts": {"b": {"type": "python", "params": {"source": record("b")}}}}])
    assert rt.info()["status"]["message"] == "completed" and runtime_mod._NAMESPACE["ran"][-1] == "b"


def test_a_build_failure_between_identical_executes_leaves_nothing_to_run():
    """Ascent keeps the last actions it built, and drops its graph on any failure (building included)."""
    good = [{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source": record("x")}}}}]
    bad = [{"action": "add_queries", "queries": {"q": {"params": {"expression": "1"}}}}]
    rt = connect(prefer="embedded")
    for acts in (good, bad, good, bad, good + bad[:0] + [{"action": "execute"}]):
        rt.publish(mesh(0))
        rt.execute(acts)
    assert runtime_mod._NAMESPACE["ran"] == ["x", "x"]  # the third did nothing, the fifth differs: rebuilt


def test_save_session_runs_after_the_graph_and_only_if_it_worked(tmp_path):
    path = write("s.yaml", """
        - action: save_session
          file_name: sess
        - action: add_queries
          queries:
            q: {params: {name: c, expression: "cycle()"}}
        """)
    run(path, cycles=[0, 1])
    assert yaml.safe_load(Path("sess.yaml").read_text()) == {"c": {"0": {"value": 0}, "1": {"value": 1}}}


# ---------------------------------------------------------------- 4. history()
def test_history_relative_index_past_the_records_is_the_newest():
    path = write("h.yaml", """
        - action: add_queries
          queries:
            q1: {params: {name: mx, expression: "max(field('e')).value"}}
            q2: {params: {name: back5, expression: "history(mx, relative_index=5)"}}
            q3: {params: {name: first, expression: "history(mx, absolute_index=0)"}}
        """)
    rt, seen = run(path, peaks=[10.0, 20.0, 30.0])
    assert [s["message"] for s in seen] == ["completed"] * 3
    assert rt.info()["expressions"]["back5"] == {"2": {"value": 30.0}}  # clamped to the newest
    assert rt.info()["expressions"]["first"] == {"2": {"value": 10.0}}
    for expr, match in [("history(mx, relative_index=-1)", "relative_index must be a non-negative integer"),
                        ("history(mx, absolute_index=7)", "found only 3 entries, cannot get entry at 7")]:
        rt.execute([{"action": "add_queries", "queries": {"q": {"params": {"name": "bad", "expression": expr}}}}])
        assert match in rt.info()["status"]["errors"][0]


# ---------------------------------------------------------------- 5. value with position
def test_value_position_arithmetic_is_refused_as_in_ascent():
    path = write("v.yaml", """
        - action: add_queries
          queries:
            q1: {params: {name: max_e, expression: "max(field('e'))"}}
            q2: {params: {name: result, expression: "max_e - history(max_e, relative_index = 1) > 100"}}
        """)
    _, seen = run(path, cycles=[0])
    err = seen[0]["errors"][0]
    assert "Unsupported math operation: 'value_position - value_position'" in err and ".value" in err
    path = write("v2.yaml", """
        - action: add_queries
          queries:
            q1: {params: {name: max_e, expression: "max(field('e')).value"}}
            q2: {params: {name: result, expression: "max_e - history(max_e, relative_index = 1) > 5"}}
        """)
    rt, seen = run(path, peaks=[10.0, 20.0, 22.0])
    assert [s["message"] for s in seen] == ["completed"] * 3
    assert rt.info()["expressions"]["result"] == {"2": {"value": False}}


def test_comparing_a_value_position_is_noted_once(capsys):
    acts = [{"action": "add_triggers", "triggers": {"hot": {"params": {
        "condition": "max(field('e')) > 5", "actions": [{"action": "add_extracts", "extracts": {
            "r": {"type": "python", "params": {"source": record("hot")}}}}]}}}}]
    _, seen = run(acts)
    assert runtime_mod._NAMESPACE["ran"] == ["hot"] * 3
    assert capsys.readouterr().err.count("note: trigger 'hot': 'max(field('e')) > 5' compares a value_position") == 1


# ---------------------------------------------------------------- 6./10. refused input, one line each
@pytest.mark.parametrize("actions, words", [
    ("""
     - action: add_queries
       queries:
         q1:
           pipeline: pl1
           params: {name: m, expression: "max(field('e'))"}
     """, ["query 'q1' is pipeline-qualified (pipeline: 'pl1')", "remove 'pipeline'"]),
    ("""
     - action: add_queries
       queries:
         q1:
           params: {name: m, expression: "max(field('e'))", pipeline: pl1}
     """, ["query 'q1' is pipeline-qualified"]),
    ("""
     - action: add_triggers
       triggers:
         t:
           params: {condition: "cycle() > 0", actions_file: a.yaml, callback: cb}
     """, ["trigger 't'", "callback", "not supported"]),
    ("""
     - action: add_triggers
       triggers:
         t:
           params: {condition: "cycle() > 0"}
     """, ["trigger 't': takes exactly one of params/actions and params/actions_file"]),
])
def test_refused_at_build_with_one_clear_line(actions, words):
    _, seen = run(write("r.yaml", actions), cycles=[0, 1])
    assert [s["message"] for s in seen] == ["failed", "failed"]
    err = seen[0]["errors"][0]
    assert "\n" not in err and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def test_unknown_function_and_non_bool_condition_are_one_line_each():
    _, seen = run([{"action": "add_queries", "queries": {"q": {"params": {
        "name": "g", "expression": "gradient(field('e'))"}}}}], cycles=[0])
    err = seen[0]["errors"][0]
    assert err.startswith("query 'q' (name 'g'): expression \"gradient(field('e'))\": unknown function 'gradient' "
                          "(an Ascent function this runtime does not provide)") and "\n" not in err
    _, seen = run([{"action": "add_triggers", "triggers": {"t": {"params": {
        "condition": "cycle() + 1", "actions": []}}}}], cycles=[0])
    assert "gives a int, not a bool" in seen[0]["errors"][0] and "make it a comparison" in seen[0]["errors"][0]


# ---------------------------------------------------------------- 7. binning in a session and a trigger
def test_binning_query_in_save_session_and_trigger():
    path = write("b.yaml", f"""
        - action: add_queries
          queries:
            q1:
              params:
                name: by_x
                expression: "binning('e', 'max', [axis('x', num_bins=4)])"
        - action: add_triggers
          triggers:
            t_peak:
              params:
                condition: "bin(by_x, index=3).value > 5"
                actions:
                  - action: add_extracts
                    extracts:
                      r: {{type: python, params: {{source: "{record('binned')}"}}}}
        - action: save_session
          file_name: binned
        """)
    rt, seen = run(path, cycles=[7])
    assert seen[0]["message"] == "completed", seen
    assert runtime_mod._NAMESPACE["ran"] == ["binned"]  # the peak sits at x = 3: bin 3
    entry = yaml.safe_load(Path("binned.yaml").read_text())["by_x"]["7"]
    assert entry["type"] == "binning" and entry["attrs"]["value"]["value"] == [1.0, 1.0, 1.0, 10.0]
    assert entry["attrs"]["bin_axes"]["value"]["x"]["num_bins"] == 4
    assert rt.info()["expressions"]["by_x"]["7"]["value"]["reduction_op"] == "max"


# ---------------------------------------------------------------- 9. the proxies' shipped actions
@pytest.mark.parametrize("name", ["advection", "gray_scott", "advection_final", "gray_scott_final"])
def test_shipped_actions_validate_and_order_queries_first(name):
    acts = load_actions_file(ROOT / "sims" / "actions" / f"{name}.yaml")
    errors = []
    plan = connect(prefer="embedded")._build(acts, errors)
    assert errors == [] and plan.warnings == []
    order = [f.key for f in plan.order]
    queries = {f.spec[0]: f.key for f in plan.order if f.kind == "query"}
    for f in plan.order:
        if f.kind == "trigger":
            from insitu.runtime.expressions import referenced_names

            for ident in referenced_names(f.spec["condition"]):
                # before it in Ascent's order, and by name too (any reading of "ordered by name" agrees)
                assert order.index(queries[ident]) < order.index(f.key) and queries[ident] < f.key
    if not name.endswith("_final"):
        assert [f.kind for f in plan.order] == ["query", "extract", "trigger", "trigger"]


# ---------------------------------------------------------------- MPI: ranks agree, binning over ranks
@pytest.mark.mpi
def test_ranks_agree_on_failures_and_binning_over_ranks(tmp_path):
    proc = run_mpi(2, [str(ROOT / "tests/mpi/runtime_semantics.py"), str(tmp_path)], timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # an extract failing on rank 1 only stops the execute on both ranks, then the trap on both
    assert result["statuses"] == [["failed", "completed", "completed"]] * 2
    assert result["after"] == [0, 0]
    assert "extract 'a_fails' failed on another rank" in result["rank0_error"]
    # a binning over two ranks' owned samples is the one-rank binning of the whole field
    assert result["binning_2ranks"] == pytest.approx(result["binning_serial"])
    assert result["count"] == 12 * 12 * 20


def test_scene_of_the_reconstruction_before_its_compress_is_reported():
    compress = {"type": "python", "params": {"source": "import ascent_filters as af; af.compress(fields=['e'])"}}
    scene = {"s1": {"plots": {"p": {"type": "volume", "field": "e", "source": "reconstruction"}}}}
    rt, errors = connect(prefer="embedded"), []
    plan = rt._build([{"action": "add_extracts", "extracts": {"inr": compress}},
                      {"action": "add_scenes", "scenes": scene}], errors)
    assert errors == [] and len(plan.warnings) == 1
    assert plan.warnings[0].startswith("scene 's1' draws this cycle's reconstruction but runs before extract 'inr'")
    plan = rt._build([{"action": "add_extracts", "extracts": {"compress": compress}},
                      {"action": "add_scenes", "scenes": scene}], errors)
    assert errors == [] and plan.warnings == [] and [f.key for f in plan.order] == ["compress", "s1"]


def test_bridge_hands_ascent_what_its_own_yaml_reader_would():
    """Actions forwarded to real Ascent: numbers typed as by Conduit, numeric lists as arrays, empty values empty."""
    from insitu.runtime.ascent_bridge import _fill

    class Recorder:  # the three calls the bridge makes on a conduit.Node
        def __init__(self):
            self.kids, self.items, self.value = {}, [], None

        def fetch(self, key):
            return self.kids.setdefault(key, Recorder())

        def append(self):
            self.items.append(Recorder())
            return self.items[-1]

        def set(self, value):
            self.value = value

    write("b.yaml", """
        - action: add_queries
          queries:
            q: {params: {expression: "1e300", name: big, look_at: [0, 1.5, "2"], empty: , pairs: [[0, 1], [2, 3]]}}
        """)
    root = Recorder()
    _fill(root, load_actions_file("b.yaml"))
    p = root.items[0].kids["queries"].kids["q"].kids["params"].kids
    assert p["expression"].value == 1e300 and p["name"].value == "big" and p["empty"].value is None
    assert p["look_at"].value.dtype == np.float64 and list(p["look_at"].value) == [0.0, 1.5, 2.0]
    assert [list(i.value) for i in p["pairs"].items] == [[0, 1], [2, 3]]
