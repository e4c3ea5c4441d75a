"""``insitu view CACHE``: the browser viewer (trame + VTK offscreen) of a temporal cache."""
from __future__ import annotations

import argparse
import errno
import socket
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from insitu.cli.command import CliError
from insitu.filters.params import FilterParamError
from insitu.filters.render import RENDER_PARAMS

EPILOG = """\
The viewer runs where the cache is (a cluster node, a workstation) and renders there
with VTK offscreen (no display needed); you look at it in any web browser.

Same machine:   insitu view run.cache            then open http://localhost:8080/
From a laptop:  on the node:    insitu view run.cache --port 8080
                on the laptop:  ssh -L 8080:localhost:8080 user@node
                then open http://localhost:8080/ on the laptop.
                (Through a login node: ssh -J user@login -L 8080:localhost:8080 user@node.)

The server listens on 127.0.0.1 only, so nobody else on the network reaches it; the
tunnel carries it to you. --host 0.0.0.0 exposes it to the whole network: avoid that
on shared machines. The cache is opened read-only: viewing a cache a simulation is
still writing is safe, and new cycles appear on the slider as they are committed.
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "view", help="browse a cache in a web browser: scrub cycles, turn the volume, recolour",
        description="Serve an interactive viewer of a temporal cache: field selector, cycle slider with "
                    "play/pause, volume rendering with colormap and opacity range, a slice view, PSNR and "
                    "ratio per cycle, the cycle's metadata.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cache", help="the cache directory")
    p.add_argument("--port", type=int, default=8080, help="TCP port to listen on (default 8080; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; reach it through ssh -L)")
    p.add_argument("--field", help="field shown first (default: the first field, alphabetically)")
    colormap = RENDER_PARAMS["colormap"]  # af.render's colormap: the same help and check
    p.add_argument("--colormap", default=colormap.default, help="initial colormap: " + colormap.help())
    p.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                   help="look for newly written cycles every SECONDS (default 2; 0: never)")
    p.set_defaults(run=run)


def check_port(host: str, port: int) -> None:
    """CliError when ``host:port`` cannot be listened on (in use, no such address, privileged)."""
    if not 0 <= port <= 65535:
        raise CliError(f"--port {port} is not a TCP port: give 1..65535, or 0 for any free port")
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CliError(f"--host {host!r} is not an address of this machine ({exc.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # the server sets SO_REUSEADDR too: a port in TIME_WAIT is usable, one with a listener is not
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} on {host} is already in use: pick another with --port "
                               "(or --port 0 for any free port)") from None
            if exc.errno == errno.EACCES:
                raise CliError(f"port {port} on {host} needs privileges: pick a port above 1023") from None
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def open_view(path: str, field: str | None) -> Any:
    """The :class:`insitu.viewer.CacheView` of ``path``; CliError when it is not a cache, is empty, lacks ``field``."""
    from insitu.cache import CacheError
    from insitu.viewer.data import CacheView

    try:
        view = CacheView(path)
    except CacheError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot read cache {path}: {exc.strerror or exc}") from None
    fields = view.fields()
    if not fields:
        bad = len(view.bad_segments)
        view.close()
        if bad:
            raise CliError(f"cache {path} has no readable entry: its {bad} segment file(s) cannot be read "
                           "(`insitu verify` lists them)")
        raise CliError(f"cache {path} is empty: no cycle has been committed yet; start the viewer once the "
                       "simulation has written its first cycle (`insitu info` shows what a cache holds)")
    if field is not None and field not in fields:
        view.close()
        raise CliError(f"cache {path} has no field {field!r}: fields are {fields}")
    return view


@contextmanager
def _argv_for_trame() -> Iterator[None]:
    """trame's server parses ``sys.argv`` for its own options; ours (--port, --host...) must not leak into it."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def run(args: argparse.Namespace) -> int:
    try:
        RENDER_PARAMS["colormap"].validate(args.colormap, "view", "--colormap")
    except FilterParamError as exc:
        raise CliError(str(exc)) from None
    if args.poll < 0:
        raise CliError(f"--poll {args.poll} must be >= 0 seconds")
    check_port(args.host, args.port)
    view = open_view(args.cache, args.field)
    try:
        from insitu.viewer.app import ViewerApp
    except ImportError as exc:
        view.close()
        raise CliError(f"the viewer needs trame and VTK ({exc}): pip install 'insitu-inr[view]'") from None

    app = ViewerApp(view, field=args.field, colormap=args.colormap, poll_s=args.poll)

    def ready(port: int) -> None:
        host = "localhost" if args.host in ("127.0.0.1", "localhost", "::1") else args.host
        print(f"insitu view: serving {args.cache} at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
        if args.host in ("127.0.0.1", "localhost", "::1"):
            print(f"  from another machine: ssh -L {port}:localhost:{port} user@{socket.gethostname()}, "
                  f"then open http://localhost:{port}/", flush=True)

    app.on_ready.append(ready)
    try:
        with _argv_for_trame():
            app.server.start(port=args.port, host=args.host, open_browser=False, show_connection_info=False,
                             timeout=0, disable_logging=True)
    except OSError as exc:  # the port was taken between our check and the server's bind
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    finally:
        view.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m insitu.cli.view CACHE ...``: the same as ``insitu view CACHE ...``."""
    from insitu.cli.command import main as cli_main

    return cli_main(["view", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
