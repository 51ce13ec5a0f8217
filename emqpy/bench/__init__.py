"""emqpy's MQTT load tool (`emqpy bench conn|sub|pub`), usable against any MQTT broker.

It does not import the broker: see cli.py for the command line and runner.Run for driving mixed
workloads from Python (bench/compare.py does).
"""
from .cli import main

__all__ = ["main"]
