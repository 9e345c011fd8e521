"""Remote-code sources of the Moondream2 twin (2024 revision family).

These files are not imported by the harness: `harness.adapters.twins.moondream.build_twin` copies them
into the twin folder next to `config.json` (whose `auto_map` names them), and transformers loads them
with `trust_remote_code=True`, exactly as it loads `vikhyatk/moondream2`'s own files. They mirror the
public API of the 2024-07-23 release (files `configuration_moondream.py`, `vision_encoder.py` and
`moondream.py` of the hub repo): class `Moondream` with `vision_encoder` (with `.preprocess`),
`text_model` (a Phi causal LM), `encode_image`, `input_embeds`, `generate`, `answer_question` and
`batch_answer`, and the same prompt and padding conventions. Sizes are toy; weights are random.
"""
