"""The in situ filters: what ``af.compress``, ``af.render`` and ``af.export`` do, whichever runtime calls them.

* :mod:`.env`: the environment a filter runs in (published data, communicator, parameters checked, results);
* :mod:`.compress`: fit every published block and put it in the temporal cache;
* :mod:`.render`: render cached cycles (PNG, Cinema) on demand;
* :mod:`.export`: write cached cycles as VTK/NumPy files;
* :mod:`.report`: the end-of-run summary of a simulation (quality per cycle, capacity).
"""
