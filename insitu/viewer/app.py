"""The trame application behind ``insitu view``: layout, state, and what each control does.

Everything VTK happens on the server's event-loop thread (an OpenGL context
belongs to one thread); decoding runs in worker threads through
:class:`~insitu.viewer.data.CacheView`, so the page stays responsive while a
cycle decodes. Scrubbing faster than decoding only ever shows the newest
request (older results are dropped when they arrive).
"""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Callable

from insitu.render.transfer import check_colormap

from insitu.viewer.data import CacheView, CycleUnavailable, Decoded, format_info, series
from insitu.viewer.plots import colorbar_png, data_url, quality_png
from insitu.viewer.scene import AXES, SliceScene, VolumeScene, prefer_offscreen, to_vtk_image, transfer_function

#: the colormaps offered in the menu (any matplotlib name works with ``--colormap``)
COLORMAPS = ["viridis", "plasma", "inferno", "magma", "cividis", "turbo", "jet", "coolwarm", "RdBu_r",
             "Spectral_r", "gray", "Blues"]


#: how often a frame still being JPEG-encoded is asked for again (every 20 ms: 10 s in all)
STALE_RETRIES = 500


def _reliable_image_delivery(protocol: Any) -> None:
    """Ask again for a frame still being JPEG-encoded every 20 ms until it comes (trame-vtk's default: 0.5 s).

    The encoder runs in a thread; the first request after a render usually
    finds it busy, and the default wait made every cycle change look slow.
    trame-vtk's own retry also drops the frame for good when the encoder is
    still busy at the second retry (its wait and its check disagree), which
    left a stale picture on a loaded machine; this retry keeps asking.
    """
    for p in getattr(protocol, "linkProtocols", []):
        if not hasattr(p, "delta_stale_time_before_render"):
            continue
        p.delta_stale_time_before_render = 0.02

        def render_stale_image(v_id: str, stale_count: int = 0, p: Any = p) -> None:
            if p.stale_handler_count.get(v_id, 0) > 0:
                p.stale_handler_count[v_id] -= 1
            if p.last_stale_time.get(v_id, 0) != 0 and stale_count < STALE_RETRIES:
                p.push_render(v_id, False, stale_count + 1)  # schedules the next retry while still stale

        p.render_stale_image = render_stale_image


def _serve_session_manager(wslink_server: Any) -> None:
    """Answer the page's session-manager request (``POST /paraview/``) with the server's own websocket.

    trame's client first asks a launcher at ``<page>/paraview/`` where its
    session is, and falls back to ``ws://<host>/ws`` when that fails; a server
    without a launcher answers 405, which the browser console shows as an error
    on every page load. Answering with that same address skips the failure.
    """
    from aiohttp import web

    async def session(request: Any) -> Any:
        scheme = "wss" if request.secure else "ws"
        return web.json_response({"sessionURL": f"{scheme}://{request.host}/ws"})

    for route in ("/paraview/", "/paraview"):
        wslink_server.app.router.add_post(route, session)


class ViewerApp:
    """One viewer over one cache: ``ViewerApp(data).server.start(...)``.

    Opens at the newest cycle. ``poll_s``: seconds between looks for cycles a
    running simulation added (0: never); while the slider is at the newest
    cycle it follows them, otherwise the shown cycle stays. ``play_s``:
    seconds per cycle while playing.
    """

    def __init__(self, data: CacheView, *, field: str | None = None, colormap: str = "viridis",
                 poll_s: float = 2.0, play_s: float = 0.5, server_name: str = "insitu-view") -> None:
        prefer_offscreen()
        from trame.app import get_server

        self.data = data
        self.poll_s = float(poll_s)
        self.play_s = float(play_s)
        self.server = get_server(server_name, client_type="vue3")
        self.state, self.ctrl = self.server.state, self.server.controller
        self.volume = VolumeScene()
        self.slice = SliceScene()
        self.grid: Decoded | None = None
        self._generation = 0
        self._loading = False
        self._last_cycle = -1
        self._tasks: list[asyncio.Task] = []
        self.on_ready: list[Callable[[int], None]] = []

        fields = data.fields()
        field = field if field is not None else fields[0]
        maps = COLORMAPS if colormap in COLORMAPS else [check_colormap(colormap)] + COLORMAPS
        name = Path(data.path).name or data.path
        self.state.update({
            "trame__title": f"{name} - insitu view", "cache_name": name,
            "cache_path": os.path.abspath(data.path), "capacity_text": data.capacity().text(), "colorbar_src": "",
            "fields": fields, "field": field,
            "colormaps": maps, "colormap": colormap, "opacity_range": [0.15, 1.0], "max_opacity": 0.5,
            "slice_axis": "z", "slice_pos": 0.5, "slice_label": "",
            "cycle_index": 0, "cycle_max": 0, "cycle": None, "cycles_text": "", "playing": False,
            "unavailable": "", "meta_rows": [], "plot_src": "", "busy": False, "decode_ms": 0,
        })
        self._set_field(field, index=None)
        self._colorbar()
        self._load_now()  # the first picture is ready before the first browser connects
        self._build_ui()
        self.state.change("field")(self._on_field)
        self.state.change("cycle_index")(self._on_cycle)
        self.state.change("colormap", "opacity_range", "max_opacity")(self._on_transfer)
        self.state.change("slice_axis", "slice_pos")(self._on_slice)
        self.state.change("playing")(self._on_playing)
        self.ctrl.on_server_ready.add(self._on_ready)
        self.ctrl.on_server_bind.add(_serve_session_manager)
        self.server.add_protocol_to_configure(_reliable_image_delivery)

    # --- state helpers ---
    @property
    def field(self) -> str:
        return self.state.field

    def _cycles(self) -> list[int]:
        return self.data.cycles(self.field)

    def _current_cycle(self) -> int | None:
        """The cycle number under the slider (None when the field has no cycle left, e.g. after retention)."""
        cycles = self._cycles()
        return cycles[max(0, min(int(self.state.cycle_index), len(cycles) - 1))] if cycles else None

    def _set_field(self, field: str, index: int | None) -> None:
        """The slider over ``field``'s cycles, at slider position ``index`` (None: the newest cycle)."""
        cycles = self.data.cycles(field)
        self.state.cycle_max = max(len(cycles) - 1, 0)
        self.state.cycle_index = max(0, len(cycles) - 1 if index is None else min(index, len(cycles) - 1))
        self.state.cycles_text = f"{len(cycles)} cycles: {cycles[0]} .. {cycles[-1]}" if cycles else "no cycles"

    def _tf(self) -> Any:
        return transfer_function(self.state.colormap, tuple(self.state.opacity_range), self.state.max_opacity,
                                 self.data.field_range(self.field))

    def _colorbar(self) -> None:
        """The colour bar of the current colormap over the field's value range (all cycles), labelled by field."""
        self.state.colorbar_src = data_url(colorbar_png(self.state.colormap, self.data.field_range(self.field),
                                                        self.field))

    def _update_meta(self, cycle: int) -> None:
        """The metadata table of ``cycle`` (index figures only: no decoding)."""
        info = next((i for i in self.data.infos(self.field) if i.cycle == cycle), None)
        self.state.meta_rows = [{"k": k, "v": v} for k, v in format_info(info).items()] if info else []

    def _plot(self, cycle: int) -> str:
        """The quality plot with ``cycle`` marked, as a data URL (thread-safe: no pyplot state)."""
        infos = self.data.infos(self.field)
        cyc, ps, ra = series(infos)
        bad = [i.cycle for i in infos if self.data.error(self.field, i.cycle)]
        return data_url(quality_png(cyc, ps, ra, cycle, unavailable=bad))

    def _update_panels(self, cycle: int) -> None:
        self._update_meta(cycle)
        self.state.plot_src = self._plot(cycle)

    def _show(self, grid: Decoded | None, reason: str = "") -> None:
        """Put ``grid`` in both views (None: clear them and say why)."""
        self.grid = grid
        self.state.unavailable = reason
        tf = self._tf()
        self.volume.show(None if grid is None else to_vtk_image(grid), tf)
        self.slice.show(grid, self.state.slice_axis, self.state.slice_pos, tf)
        self._slice_label()

    def _slice_label(self) -> None:
        if self.grid is None:
            self.state.slice_label = ""
            return
        k = SliceScene.index_of(self.grid, self.state.slice_axis, self.state.slice_pos)
        self.state.slice_label = f"{self.state.slice_axis} = {k}"

    def _push(self) -> None:
        self.ctrl.view_update()

    def _load_now(self) -> float:
        """Decode and show the current cycle synchronously (start-up, benchmark); returns seconds."""
        t0 = time.perf_counter()
        cycle = self._current_cycle()
        self.state.cycle = cycle
        if cycle is None:
            self._show(None, f"field {self.field!r} has no cycle in the cache any more")
            return time.perf_counter() - t0
        try:
            self._show(self.data.grid(self.field, cycle))
        except CycleUnavailable as exc:
            self._show(None, f"cycle {cycle} is unavailable: {exc}")
        self._update_panels(cycle)
        self.volume.window.Render()
        self.slice.window.Render()
        self.data.prefetch(self.field, cycle)
        return time.perf_counter() - t0

    async def _load(self) -> None:
        """Decode the current cycle off the loop, then show it, unless a newer request came meanwhile.

        Order: label and metadata at once, the pictures when decoded, the
        quality plot (~60 ms of matplotlib) last, off the loop too.
        """
        self._generation += 1
        gen = self._generation
        field, cycle = self.field, self._current_cycle()
        if cycle is None:
            with self.state:
                self.state.cycle = None
                self._show(None, f"field {field!r} has no cycle in the cache any more")
            self._push()
            return
        with self.state:
            self.state.cycle = cycle
            self.state.busy = not self.data.cached(field, cycle)
            self._update_meta(cycle)
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        self._loading = True
        try:
            grid, reason = await loop.run_in_executor(None, self._fetch, field, cycle)
        finally:
            self._loading = False
        if gen != self._generation:
            return  # the user moved on; the newer request shows its own cycle
        with self.state:
            self._show(grid, reason)
            self.state.busy = False
            self.state.decode_ms = round(1000 * (time.perf_counter() - t0))
        self._push()
        direction = -1 if self._last_cycle > cycle else 1
        self._last_cycle = cycle
        self.data.prefetch(field, cycle, direction)
        plot = await loop.run_in_executor(None, self._plot, cycle)
        if gen == self._generation:
            with self.state:
                self.state.plot_src = plot

    def _fetch(self, field: str, cycle: int) -> tuple[Decoded | None, str]:
        try:
            return self.data.grid(field, cycle), ""
        except CycleUnavailable as exc:
            return None, f"cycle {cycle} is unavailable: {exc}"

    # --- change handlers ---
    async def _on_field(self, field: str, **_: Any) -> None:
        self._set_field(field, index=None)
        self._colorbar()
        self.volume.reset_camera()
        await self._load()

    async def _on_cycle(self, **_: Any) -> None:
        await self._load()

    def _on_transfer(self, **_: Any) -> None:
        self._colorbar()
        tf = self._tf()
        self.volume.set_transfer(tf)
        self.slice.set_transfer(tf)
        self._push()

    def _on_slice(self, **_: Any) -> None:
        self.slice.show(self.grid, self.state.slice_axis, self.state.slice_pos, self._tf())
        self._slice_label()
        self._push()

    async def _on_playing(self, playing: bool, **_: Any) -> None:
        if playing:
            self._tasks.append(asyncio.ensure_future(self._play()))

    async def _play(self) -> None:
        """Advance one cycle per ``play_s`` (waiting for slow decodes, never piling them up); loops at the end."""
        while self.state.playing:
            await asyncio.sleep(self.play_s)
            while self._loading:
                await asyncio.sleep(0.05)
            if not self.state.playing:
                break
            with self.state:
                self.state.cycle_index = (int(self.state.cycle_index) + 1) % (self.state.cycle_max + 1)

    async def _poll(self) -> None:
        """Every ``poll_s`` seconds look for new cycles (one directory listing; the cache is reopened only when a
        segment was committed). New cycles extend the slider; at the newest cycle the view follows them,
        elsewhere the shown cycle stays."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                changed = await loop.run_in_executor(None, self.data.refresh)
            except Exception:  # noqa: BLE001 - a hiccup while a writer renames files: try again later
                continue
            if not changed:
                continue
            cycle = self.state.cycle
            following = int(self.state.cycle_index) >= int(self.state.cycle_max)
            with self.state:
                self.state.fields = self.data.fields()
                self.state.capacity_text = self.data.capacity().text()
                cycles = self._cycles()
                index = None if following else (cycles.index(cycle) if cycle in cycles
                                                 else min(int(self.state.cycle_index), len(cycles) - 1))
                self._set_field(self.field, index)
                self._colorbar()  # the value range may have grown
                current = self._current_cycle()
                if current is not None:
                    self._update_panels(current)
            if self._current_cycle() != cycle:
                await self._load()

    def _on_ready(self, **_: Any) -> None:
        if self.poll_s > 0:
            self._tasks.append(asyncio.ensure_future(self._poll()))
        for fn in self.on_ready:
            fn(self.server.port)

    # --- benchmark hook ---
    def change_cycle_sync(self, index: int) -> float:
        """Show cycle number ``index`` (slider position) synchronously: decode (unless cached) + render; seconds."""
        self.state.cycle_index = index
        return self._load_now()

    # --- layout ---
    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import SinglePageWithDrawerLayout
        from trame.widgets import html
        from trame.widgets import vtk as vtk_widgets
        from trame.widgets import vuetify3 as v3

        with SinglePageWithDrawerLayout(self.server, width=360) as layout:
            layout.title.set_text(f"insitu view: {self.state.cache_name}")
            with layout.toolbar:
                v3.VSpacer()
                with html.Div(id="field-select", style="width: 180px;"):
                    v3.VSelect(v_model=("field",), items=("fields",), label="field", density="compact",
                               hide_details=True)
                v3.VBtn(icon=("playing ? 'mdi-pause' : 'mdi-play'",), click="playing = !playing", id="play-button",
                        title="play / pause")
                with html.Div(id="cycle-slider", style="width: 360px;", classes="mx-2"):
                    v3.VSlider(v_model=("cycle_index",), min=0, max=("cycle_max",), step=1, hide_details=True)
                html.Div("cycle {{ cycle }}", id="cycle-label", classes="text-h6 mx-2", style="min-width: 9em;")
                v3.VProgressCircular(indeterminate=True, size=20, v_show=("busy",))

            with layout.drawer:
                with v3.VContainer(classes="pa-3"):
                    # the whole path, wrapped: the toolbar has room for the cache's name only
                    html.Div("{{ cache_path }}", id="cache-path", classes="text-caption mb-1",
                             style="word-break: break-all;")
                    html.Div("{{ capacity_text }}", id="capacity", classes="text-caption mb-3")
                    with html.Div(id="colormap-select", classes="mb-1"):
                        v3.VSelect(v_model=("colormap",), items=("colormaps",), label="colormap", density="compact",
                                   hide_details=True)
                    # the colours of both views over the field's value range (all cycles)
                    html.Img(src=("colorbar_src",), id="colorbar", classes="mb-2", style="width: 100%;")
                    html.Div("opacity range (fraction of the value range)", classes="text-caption")
                    v3.VRangeSlider(v_model=("opacity_range",), min=0, max=1, step=0.01, hide_details=True,
                                    id="opacity-range")
                    html.Div("maximum opacity (per cell)", classes="text-caption")
                    v3.VSlider(v_model=("max_opacity",), min=0, max=1, step=0.01, hide_details=True,
                               id="max-opacity")
                    html.Div("slice: {{ slice_label }}", classes="text-caption mt-2", id="slice-label")
                    with v3.VBtnToggle(v_model=("slice_axis",), mandatory=True, density="compact", classes="mb-1",
                                       id="slice-axis"):
                        for a in AXES:
                            v3.VBtn(a, value=a)
                    v3.VSlider(v_model=("slice_pos",), min=0, max=1, step=0.01, hide_details=True, id="slice-pos")
                    html.Div("quality per cycle ({{ cycles_text }})", classes="text-caption mt-2", id="cycles-text")
                    html.Img(src=("plot_src",), id="quality-plot", style="width: 100%;")
                    html.Div("last cycle change: {{ decode_ms }} ms (decode + draw)", classes="text-caption")
                    with html.Table(id="cycle-meta", classes="text-body-2 mt-2", style="width: 100%;"):
                        with html.Tr(v_for="row in meta_rows", key="row.k"):
                            html.Td("{{ row.k }}", classes="text-medium-emphasis pr-2")
                            html.Td("{{ row.v }}")

            with layout.content:
                with v3.VContainer(fluid=True, classes="pa-1"):
                    v3.VAlert(v_show=("unavailable",), type="warning", density="compact", text=("unavailable",),
                              id="unavailable", classes="mb-1")
                    with v3.VRow(no_gutters=True):
                        with v3.VCol(cols=7, style="height: 520px;", id="volume-col"):
                            volume = vtk_widgets.VtkRemoteView(self.volume.window, ref="volume_view",
                                                               interactive_ratio=1, still_quality=95,
                                                               id="volume-view")
                        with v3.VCol(cols=5, style="height: 520px;", id="slice-col"):
                            sl = vtk_widgets.VtkRemoteView(self.slice.window, ref="slice_view", interactive_ratio=1,
                                                           still_quality=95, id="slice-view")
            self.ctrl.view_update.add(volume.update)
            self.ctrl.view_update.add(sl.update)
        self.layout = layout
