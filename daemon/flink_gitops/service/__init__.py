"""The long-running daemon around the reconciler: the loop, its signals, systemd's notify protocol,
the HTTP API.

Above ``execute`` in the layers (``cli.run`` starts it). Neighbours: ``service.loop``
(the run loop), ``service.notify`` (sd_notify),
``service.api`` (the HTTP API).
"""
