"""Generators and discriminators built from `tfgt.layers`."""
