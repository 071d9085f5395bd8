"""The edge runtime: sensor sources, a durable outbox, uplinks to the cloud and the sender between them.

    source --windows--> scorer --HealthScore--> Outbox (SQLite) --> Sender --batches--> Uplink

`component` wires them from a JSON configuration (`python -m scrm_edge --config config.json`).
"""
