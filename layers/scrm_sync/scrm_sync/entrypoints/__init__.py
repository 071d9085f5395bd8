"""Helpers shared by the Lambda handlers (HTTP plumbing, authentication)."""
