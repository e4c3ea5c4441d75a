"""The in situ filters: what ``af.compress``, ``af.render`` and ``af.export`` do, whichever runtime calls them.

* :mod:`.params`: each filter's parameters, declared once (checks, messages, docstrings, the CLI's matching options);
* :mod:`.cycles`: the one grammar of ``cycles`` (``all``, ``last:N``, C, lists, ``START:STOP[:STEP]``), CLI's too;
* :mod:`.env`: the environment a filter runs in (published data, communicator, safe execution, results);
* :mod:`.compress`: fit every published block and put it in the temporal cache;
* :mod:`.render`: render cached cycles (PNG, Cinema) on demand;
* :mod:`.export`: write cached cycles as VTK/NumPy files;
* :mod:`.report`: the end-of-run summary of a simulation (quality per cycle, capacity).
"""
