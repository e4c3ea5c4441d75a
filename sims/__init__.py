"""Bundled proxy simulations (numpy + MPI) that publish Blueprint meshes."""
from __future__ import annotations
