"""Edge device health: windows of vibration readings -> a 0-100 health score per window.

Pure Python + numpy, no AWS imports: the same package runs on an edge gateway (the Greengrass
component in greengrass/, or a plain `python -m scrm_edge` on a gateway without Greengrass) and
in Lambda (the cloud re-derives each score's ISO zone from its velocity with its own zone table).
"""
