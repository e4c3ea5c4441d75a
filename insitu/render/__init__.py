"""Rendering of reconstructed volumes: camera, transfer functions, ray marching (see render/README in docs)."""
