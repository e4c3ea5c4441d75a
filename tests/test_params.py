"""The declared parameters of the filters (insitu.filters.params) and the one cycles grammar (insitu.filters.cycles).

One declaration per parameter gives the check, the error message, the docstring of ``af.*``, the list of the
"unknown parameter" message, and the help and check of the command-line option that means the same.
"""
import argparse
import ast
import re

import numpy as np
import pytest

import ascent_filters as af
from insitu.filters.compress import COMPRESS_PARAMS, CompressParams
from insitu.filters.cycles import CYCLES_FORMS, CyclesError, parse_cycles, select_cycles
from insitu.filters.export import EXPORT_PARAMS, ExportParams
from insitu.filters.params import (FilterParamError, FilterParams, Invalid, Param, ParamSet, integer, number,
                                   select_cached)
from insitu.filters.render import RENDER_PARAMS, RenderParams
from support.mpi import ROOT

ALL = {"compress": (COMPRESS_PARAMS, CompressParams, af.compress, {}),
       "render": (RENDER_PARAMS, RenderParams, af.render, {"field": "f"}),
       "export": (EXPORT_PARAMS, ExportParams, af.export, {"field": "f"})}


def error(cls, kwargs) -> str:
    with pytest.raises(FilterParamError) as exc:
        cls.from_kwargs(kwargs)
    return str(exc.value)


# --- the parameter layer ---------------------------------------------------------------------------------

def test_max_abs_error_is_the_name_and_max_error_an_alias():
    assert COMPRESS_PARAMS["max_error"] is COMPRESS_PARAMS["max_abs_error"]
    assert COMPRESS_PARAMS.aliases == {"max_error": "max_abs_error"}
    for name in ("max_abs_error", "max_error"):
        p = CompressParams.from_kwargs({name: 0.01})
        assert p.max_abs_error == 0.01 and p.max_error == 0.01  # the old attribute still reads
        assert p == CompressParams.from_kwargs({"max_abs_error": 0.01})
    # a bad value is named as the caller spelled it
    assert error(CompressParams, {"max_error": -1}) == "compress: max_error=-1 must be a number > 0 (absolute error)"
    assert error(CompressParams, {"max_abs_error": 0}).startswith("compress: max_abs_error=0 must be a number > 0")
    msg = error(CompressParams, {"max_error": 0.1, "max_abs_error": 0.1})
    assert "max_error=" in msg and "max_abs_error=" in msg and "give one" in msg


@pytest.mark.parametrize("action", sorted(ALL))
def test_unknown_name_lists_the_valid_ones(action):
    params, cls, _, base = ALL[action]
    msg = error(cls, {**base, "colour": 1, "zzz": 2})
    first, *rest = msg.split("\n")
    assert first.startswith(f"{action}: unknown parameter(s) ['colour', 'zzz']")
    assert all(repr(p.name) in first for p in params)  # the first line alone names every valid parameter
    assert all(a in first for p in params for a in p.aliases)
    assert rest == [f"    {p.describe()}" for p in params]  # then what each means, from the declarations
    assert all(f"{p.name}:" in msg or f"{p.name} (alias" in msg for p in params)


def test_unknown_name_suggests_the_nearest():
    assert "(did you mean 'ratio'?)" in error(CompressParams, {"ration": 3}).split("\n")[0]
    assert "(did you mean 'colormap'?)" in error(RenderParams, {"field": "f", "colourmap": "x"})
    assert "did you mean" not in error(ExportParams, {"field": "f", "zzzzzz": 1})


@pytest.mark.parametrize("cls, kwargs, message", [
    (CompressParams, {"temporal": "deltas"}, "compress: temporal='deltas' is invalid: valid choices are "
                                             "['none', 'delta']"),
    (CompressParams, {"param_bits": 3}, "compress: param_bits=3 is invalid: valid choices are [4, 5, 6, 7, 8, 16]"),
    (CompressParams, {"param_bits": True}, "compress: param_bits=True is invalid: valid choices are"),
    (CompressParams, {"backend": "cuda"}, "compress: backend='cuda' is invalid: valid choices are "
                                          "['auto', 'torch', 'native', 'tcnn']"),
    (CompressParams, {"device": "gpu"}, "compress: device='gpu' is invalid: valid choices are 'auto', 'cpu', "
                                        "'cuda', 'cuda:N'"),
    (RenderParams, {"field": "f", "plot": "iso"}, "render: plot='iso' is invalid: valid choices are "
                                                  "['volume', 'pseudocolor', 'slice', 'isosurface']"),
    (RenderParams, {"field": "f", "backend": "gpu"}, "render: backend='gpu' is invalid: valid choices are"),
    (RenderParams, {"field": "f", "colormap": "nope"}, "render: unknown colormap 'nope': valid choices include"),
    (RenderParams, {"field": "f", "camera": {"azimut": 3}}, "render: camera: unknown parameter(s) ['azimut']: "
                                                            "valid ones are"),
    (ExportParams, {"field": "f", "format": "png"}, "export: format='png' is invalid: valid choices are "
                                                    "['npy', 'vti']"),
    (ExportParams, {"field": "f", "cycles": "last"}, f"export: cycles='last' is invalid: use {CYCLES_FORMS}"),
])
def test_bad_value_names_action_parameter_value_and_choices(cls, kwargs, message):
    msg = error(cls, kwargs)
    assert msg.startswith(message) and "\n" not in msg


def test_more_one_line_errors():
    assert error(RenderParams, {}) == "render: field= is required (the cached field to render)"
    assert error(ExportParams, {"field": ""}) == "export: field='' must be the name of a cached field"
    assert error(CompressParams, {"keyframe_every": 0}) == "compress: keyframe_every=0 must be a positive integer"
    assert error(CompressParams, {"ratio": 0.5}) == "compress: ratio=0.5 must be a number >= 1.0"
    assert error(CompressParams, {"fields": 3}) == "compress: fields=3 must be a list of field names"
    assert error(CompressParams, {"warm_start": "no"}) == "compress: warm_start='no' must be True or False"
    assert "memory_budget='lots' must be a positive size" in error(CompressParams, {"memory_budget": "lots"})
    assert "cinema={'phi': 0} must be a mapping" in error(RenderParams, {"field": "f", "cinema": {"phi": 0}})
    # rules between parameters stay explicit, after the per-parameter checks
    assert "param_bits 4..8, not 16" in error(CompressParams, {"temporal": "delta", "param_bits": 16})
    assert "needs warm_start=True" in error(CompressParams, {"temporal": "delta", "warm_start": False})
    assert "slice ('q', 0.5)" in error(RenderParams, {"field": "f", "plot": "slice", "slices": [["q", 0.5]]})


def test_valid_values_are_kept_as_given():
    p = CompressParams.from_kwargs({"fields": "e", "ratio": None, "warm_start": 1, "memory_budget": 10 ** 9,
                                    "disk_budget": "1GiB", "device": "cuda:1", "backend": "torch"})
    assert p.fields == ["e"] and p.ratio is None and p.warm_start is True and p.memory_budget == 10 ** 9
    assert p.disk_budget == "1GiB" and p.device == "cuda:1" and p.max_steps == 1000 and p.seed == 0
    r = RenderParams.from_kwargs({"field": "f", "cycles": [3, 1], "width": 64, "camera": {"azimuth": 30},
                                  "cinema": {"phi": "4", "theta": 2}, "image_prefix": "", "output_dir": ""})
    assert r.cycles == [3, 1] and r.spec().width == 64 and r.spec().camera == {"azimuth": 30}
    assert r.cinema_views() == (4, 2, "f") and r.spec().colormap == "viridis" and r.spec().height == 512
    # defaults are fresh for each call: mutating one call's camera leaves the next call's alone
    a, b = RenderParams.from_kwargs({"field": "f"}), RenderParams.from_kwargs({"field": "f"})
    a.camera["zoom"] = 1
    assert b.camera == {} and RENDER_PARAMS["camera"].default == {}


def test_render_defaults_are_the_renderers():
    from insitu.render.cached import RenderSpec

    assert RenderParams.from_kwargs({"field": "f"}).spec() == RenderSpec()


def test_param_set_basics():
    ps = ParamSet("demo", [Param("n", "a count", 3, check=integer(1), aliases=("count",)),
                           Param("x", "a number", check=number(0.0)),
                           Param("name", "a name", required=True)])
    assert ps.names == ["n", "x", "name"] and "count" in ps and len(ps) == 3
    assert ps.parse({"name": "a"}) == {"n": 3, "x": None, "name": "a"}
    assert ps.parse({"name": "a", "count": 5, "x": None}) == {"n": 5, "x": None, "name": "a"}
    with pytest.raises(FilterParamError, match=r"^other: count=0 must be a positive integer$"):
        ps.parse({"name": "a", "count": 0}, action="other")
    with pytest.raises(FilterParamError, match=r"^demo: name= is required \(a name\)$"):
        ps.parse({})
    with pytest.raises(ValueError, match="declared twice"):
        ParamSet("demo", [Param("a", "x"), Param("b", "y", aliases=("a",))])

    def odd(v):
        if v % 2 == 0:
            raise Invalid("must be odd")
        return v

    class Demo(FilterParams):
        PARAMS = ParamSet("demo", [Param("k", "an odd number", 1, check=odd)])

    assert Demo().k == 1 and Demo.from_kwargs({"k": 3}).k == 3 and repr(Demo()) == "Demo(k=1)"
    with pytest.raises(FilterParamError, match=r"^demo: k=2 must be odd$"):
        Demo.from_kwargs({"k": 2})


@pytest.mark.parametrize("action", sorted(ALL))
def test_docstrings_are_generated_from_the_declarations(action):
    params, _, fn, _ = ALL[action]
    doc = fn.__doc__
    for p in params:
        assert f"    {p.describe()}\n" in doc
        assert p.doc in doc
    assert f"{action.upper()}_PARAMS" in doc
    if action == "compress":
        assert "max_abs_error (alias: max_error):" in doc


# --- the command line takes its options from the same declarations --------------------------------------

def subparser(name: str) -> argparse.ArgumentParser:
    from insitu.cli.command import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


@pytest.mark.parametrize("flag, name", [
    ("--field", "field"), ("--cycles", "cycles"), ("--plot", "plot"), ("--iso", "iso_values"),
    ("--colormap", "colormap"), ("--opacity", "opacity"), ("--range", "value_range"), ("--camera", "camera"),
    ("--background", "background"), ("--step", "step"), ("--prefix", "image_prefix"), ("--output", "output_dir"),
    ("--backend", "backend"),
])
def test_replay_options_are_render_parameters(flag, name):
    param = RENDER_PARAMS[name]
    opt = option(subparser("replay"), flag)
    assert param.doc.replace("%", "%%") in opt.help
    if param.choices:
        assert ", ".join(map(str, param.choices)) in opt.help
    if name in ("plot", "colormap", "step", "backend"):
        assert opt.default == param.default


def test_export_and_view_options_are_filter_parameters():
    from insitu.cli import export as cli_export

    export = subparser("export")
    assert EXPORT_PARAMS["backend"].doc in option(export, "--backend").help
    assert cli_export.FORMATS == tuple(f".{f}" for f in EXPORT_PARAMS["format"].choices)
    view = option(subparser("view"), "--colormap")
    assert RENDER_PARAMS["colormap"].doc in view.help and view.default == RENDER_PARAMS["colormap"].default


def test_cli_export_checks_the_backend_like_the_filter(tmp_path, capsys):
    from insitu.cli.command import main

    assert main(["export", str(tmp_path), "--field", "e", "--cycle", "0", "-o", str(tmp_path / "x.npy"),
                 "--backend", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "export: --backend='gpu' is invalid: valid choices are ['auto', 'torch', 'native', 'tcnn']" in err


# --- one cycles grammar ------------------------------------------------------------------------------------

HAVE = [0, 5, 10, 15, 20]


@pytest.mark.parametrize("spec, chosen", [
    ("all", HAVE),
    ("last:2", [15, 20]),
    ("last:9", HAVE),
    ("last:0", []),  # the filters took it (nothing); the command line says "no cycles to render"
    ("last:-1", []),
    (10, [10]),
    (np.int64(10), [10]),
    ("10", [10]),
    ([20, 0, 5], [20, 0, 5]),  # in the order given
    ((5,), [5]),
    ([5.0], [5]),
    ("5,10", [5, 10]),
    (" 5, 10 ", [5, 10]),
    ("0:11", [0, 5, 10]),
    ("0:21:10", [0, 10, 20]),
    ("5:21:10", [5, 15]),
    ("-5:6", [0, 5]),
])
def test_one_cycles_grammar_accepts_every_form(spec, chosen):
    assert select_cycles(spec, HAVE) == chosen
    # the filters and the command line resolve it with this same function
    assert select_cached("render", spec, HAVE) == chosen
    assert RenderParams.from_kwargs({"field": "f", "cycles": spec}).select(HAVE) == chosen
    assert ExportParams.from_kwargs({"field": "f", "cycles": spec}).select(HAVE) == chosen
    if isinstance(spec, str) and chosen:
        from insitu.cli.replay import select

        assert select(spec, HAVE) == chosen


@pytest.mark.parametrize("spec", ["x", "last:x", "last:", "1:2:0", "1:2:3:4", "3,", "", ":", "1.5", True, None,
                                  3.5, [True], ["3"], {"a": 1}])
def test_malformed_cycles_are_rejected_naming_the_forms(spec):
    with pytest.raises(CyclesError, match=re.escape(f"cycles={spec!r} is invalid: use {CYCLES_FORMS}")):
        parse_cycles(spec)
    assert f"cycles={spec!r} is invalid" in error(RenderParams, {"field": "f", "cycles": spec})


def test_uncached_cycles_show_the_cached_range():
    span = "cached cycles: 0..20 (5 cycles)"
    with pytest.raises(CyclesError, match=re.escape(f"cycles=[3, 5]: cycle(s) [3] are not cached; {span}")):
        select_cycles([3, 5], HAVE)
    with pytest.raises(CyclesError, match=re.escape(f"cycles='30:90' selects no cached cycle; {span}")):
        select_cycles("30:90", HAVE)
    with pytest.raises(FilterParamError, match=re.escape(f"export: cycles=7: cycle(s) [7] are not cached; {span}")):
        ExportParams.from_kwargs({"field": "f", "cycles": 7}).select(HAVE)
    assert select_cycles("all", []) == [] and select_cycles("last:3", []) == []
    with pytest.raises(CyclesError, match="cached cycles: none"):
        select_cycles(0, [])


def test_cli_cycles_errors_name_the_option():
    from insitu.cli.command import CliError
    from insitu.cli.replay import select

    with pytest.raises(CliError, match=re.escape("--cycles 30:90 selects no cached cycle; cached cycles: 0..20")):
        select("30:90", HAVE)
    with pytest.raises(CliError, match=re.escape("--cycles 3: cycle(s) [3] are not cached")):
        select("3", HAVE)
    with pytest.raises(CliError, match=re.escape(f"--cycles abc is invalid: use {CYCLES_FORMS}")):
        select("abc", HAVE)
    with pytest.raises(CliError, match=re.escape("no cycles to render; cached cycles: 0..20")):
        select("last:0", HAVE)


def test_no_other_cycles_parser():
    """The grammar lives in insitu/filters/cycles.py only: no other module compares with 'all' or looks for 'last:'."""
    grammar = ROOT / "insitu" / "filters" / "cycles.py"
    found = []
    for path in sorted((ROOT / "insitu").rglob("*.py")) + sorted((ROOT / "ascent_filters").rglob("*.py")):
        if path == grammar:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            operands = [node.left, *node.comparators] if isinstance(node, ast.Compare) else \
                list(node.args) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "partition", "split", "removeprefix") else []
            if any(isinstance(o, ast.Constant) and isinstance(o.value, str)
                   and (o.value == "all" or o.value.startswith("last:")) for o in operands):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
