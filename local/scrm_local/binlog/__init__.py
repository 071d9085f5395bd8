"""The local binlog bridge: the docker-free stand-in for AWS DMS that streams a MySQL/MariaDB
schema's binlog into the CDC Kinesis stream as DMS records (see `bridge` for how).

- `source`: the server and schema, from a mysql:// URL
- `checkpoint`: binlog positions and the checkpoint file
- `ddl`: which tables a DDL statement changes, as DMS control operations
- `values`, `table_metadata`: row images as JSON-ready data, with their keys and JSON columns
- `transaction`: one buffered transaction and the DMS records it becomes
- `kinesis_sender`: PutRecords with retries
- `group_commit`: many transactions per PutRecords call, checkpointed after the last one all sent
- `stopping`: stopping the bridge's thread and connections at once
- `bridge`: the reconnect loop, event handling and commit, and the local stack's wiring
"""

from .bridge import BinlogBridge, bridge_for_stack

__all__ = ["BinlogBridge", "bridge_for_stack"]
