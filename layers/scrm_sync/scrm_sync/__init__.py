"""scrm_sync: omnichannel customer-data sync.

domain/    pure rules (no boto3, no environment reads)
channels/  one module per channel behind one interface
services/  use cases that take ports as parameters
adapters/  boto3 and HTTP clients: the only place they are imported
bootstrap  the composition root: one cached factory per use case
settings   the environment, one small model per use case
"""

__version__ = "0.1.0"
