"""Adapters: the only modules that import boto3 or talk to the network."""
