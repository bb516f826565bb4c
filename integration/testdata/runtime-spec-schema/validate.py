"""Validate a config.json against the runtime-spec schema next to this file.

Usage: python3 validate.py CONFIG.json. Prints every violation (JSON path: message) and exits
1 if there is any, 2 if the schema itself cannot be read.
"""
import json
import pathlib
import sys
import warnings

import jsonschema

warnings.simplefilter("ignore", DeprecationWarning)
here = pathlib.Path(__file__).resolve().parent
schema = json.loads((here / "config-schema.json").read_text())
resolver = jsonschema.RefResolver(base_uri=here.as_uri() + "/", referrer=schema)
validator = jsonschema.Draft4Validator(schema, resolver=resolver)
doc = json.loads(pathlib.Path(sys.argv[1]).read_text())
errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
for e in errors:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
    print(f"{path or '.'}: {e.message}")
sys.exit(1 if errors else 0)
