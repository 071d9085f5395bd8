"""Benchmarks behind `make bench` (see ../shared BENCHMARKS.md for what each figure means)."""

import os

# Lambda's Python runtime ships boto3 without awscrt, but aws-sam-cli puts boto3[crt] in the dev
# environment, and botocore then signs with the CRT (~0.2 ms more CPU per call here). botocore
# decides when it is imported, so this must run before any benchmark imports it.
os.environ.setdefault("BOTO_DISABLE_CRT", "true")
