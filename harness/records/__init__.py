"""The stored records, declared: samples.jsonl rows, result.json (with its manifest and latency
summary) and training.json. Writers build them, readers check them; `to_dict` / `from_dict` are
the only way between a record and its JSON.

Readers are strict: a key no class declares is a one-line `HarnessError` naming the file and the
key (a writer that drifted, or a hand-edited typo, fails at once instead of being read as missing).
Keys a reader can do without have a default (None), so hand-made and older files still load.
Nested free-form parts stay plain dicts: spec (RunSpec.to_dict), metrics, metric_info, memory,
speed_factors, packages, decoding, the training record's environment and recipe, and the
model-specific facts an adapter adds to the manifest (`Manifest.model_facts`).

Schema version (`SCHEMA_VERSION` in harness/specs.py; one number for result.json, training.json
and the samples.jsonl rows of the same run):
- bump it for ANY change to the declared keys: a new key, a removed or renamed key, a changed type,
  unit or meaning. Strict readers make even an added key visible to an older harness, which then
  says "newer than this harness understands; upgrade" instead of "unknown key".
- additive change (a new optional key): `upgrade` fills it with its "not recorded" value for older
  files. Incompatible change (rename, removal, new unit or meaning): `upgrade` converts the old
  form, or refuses in one line when it cannot be recovered.
- no bump for new entries inside the free-form dicts above (their readers use `.get`).
- older files are read ONLY through `upgrade(record, from_version)`; no other module reshapes
  older layouts. Files newer than this code are refused.
- a bump does not change run ids: the spec's hash leaves the layout version out (a run measured
  under layout 2 is the same run under layout 3), and older results load through `upgrade`.

History: 1: first layout. 2: started_at / finished_at (UTC ISO-8601) in result.json and
training.json, schema_version in training.json (absent: 1), image_id / image_digest / base_image
in the manifest, recipe_name / autocast / optimizer / max_grad_norm in the training record.
3: resumed_at_step in the training record (None before: not recorded); specs carry model_facts,
adapter_kind, metric_versions and synthetic (the self-contained spec).
"""

from harness.records.base import utc_now
from harness.records.files import LatencySummary, Manifest, RunResult, Sample, TrainingRecord
from harness.records.versions import read_record, upgrade

__all__ = [
    "LatencySummary",
    "Manifest",
    "RunResult",
    "Sample",
    "TrainingRecord",
    "read_record",
    "upgrade",
    "utc_now",
]
