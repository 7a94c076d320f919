"""Indexes beside the store: encoders, vector index, keyword query syntax."""
