"""Why is run B slower (or faster) than run A? A latency difference attributed to its causes.

Pure host-side code (no torch): it reads result.json (and samples.jsonl when given), so the CLI
(`harness explain RUN_A RUN_B`) and the leaderboard's "why slower" section share it.

compare (which runs may be compared) -> load (a stored run) -> decompose (a run's latency as exact
additive terms, a pair's difference term by term) -> attribute (terms to causes, the settings that
differ, shares) -> words (sentences, headline, figures table, Markdown). The result is an
`Explanation` (explanation.py), which the leaderboard renders as is.
"""

from harness.analysis.attribute import explain_pair
from harness.analysis.compare import comparable, data_key, find_pairs, pair_key
from harness.analysis.explanation import Cause, Explanation, Row, Setting
from harness.analysis.load import load_run, load_samples

__all__ = ["Cause", "Explanation", "Row", "Setting", "comparable", "data_key", "explain_pair", "find_pairs",
           "load_run", "load_samples", "pair_key"]
