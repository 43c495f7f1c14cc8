"""Parses a daemon's /metrics with prometheus_client's text parser.

Usage: parse_metrics.py URL
Prints one JSON object: {"family name": {"type": t, "samples": [[name, labels, value], ...]}}.
A text the parser rejects raises (exit status 1).
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
out = {}
for family in text_string_to_metric_families(text):
    out[family.name] = {"type": family.type,
                        "samples": [[s.name, s.labels, s.value] for s in family.samples]}
print(json.dumps(out, sort_keys=True))
