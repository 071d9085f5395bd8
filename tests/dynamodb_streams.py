"""A table's DynamoDB stream read the way Lambda hands it over (tests and benchmarks on moto)."""

from __future__ import annotations

from typing import Any

from scrm_local.event_records import dynamodb_record


class StreamTail:
    """Reads a table's stream from where it last stopped (one shard per table in moto)."""

    def __init__(self, clients: Any, table: str) -> None:
        self.streams = clients("dynamodbstreams")
        self.arn = clients("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shards = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self.iterators = [
            self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for s in shards
        ]

    def read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for n, iterator in enumerate(self.iterators):
            answer = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            records += [dynamodb_record(r, self.arn) for r in answer.get("Records", [])]
            self.iterators[n] = answer["NextShardIterator"]
        return records
