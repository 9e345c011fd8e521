"""Remote-code sources of the Moondream2 2025-family twin (`HfMoondream`).

Copied into the twin folder by `harness.adapters.twins.moondream.build_twin_2025` and loaded by
transformers with `trust_remote_code=True`. They mirror the public surface of the 2025 releases
(`hf_moondream.py`, `moondream.py`, `config.py` of `vikhyatk/moondream2` revisions 2025-01-09 to
2025-06-21): `HfMoondream.model` is a `MoondreamModel` with `encode_image(image, settings)` (which,
as the 2025-06 code, reads `settings["variant"]` whenever settings are given), `query(image, question,
stream=..., settings={"temperature", "top_p", "max_tokens", "variant"})` (sampling at temperature 0.5
unless told otherwise; the prompt is prefix + question + suffix + suffix, the suffix appended twice as
in the release), `_prefill_prompt`, `_decode_one_tok`, a `tokenizers.Tokenizer` at `.tokenizer`, token
templates in `config.tokenizer`, and prefix-LM attention: the BOS + image positions attend to each
other bidirectionally, everything after them causally. Toy sizes, random weights, no KV cache (each
step re-runs the whole sequence), and the tokenizer ships inside config.json instead of coming from
the hub repo `moondream/starmie-v1`.
"""
