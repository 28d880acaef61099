"""Harnesses around the real validators and engines of the targets (see docs on oracles)."""
